"""The records layer: one typed reader and writer per on-disk format.

Every file this project writes, and every file of CANDLE's it reads, has exactly one module
here that parses it and one that writes it. Each record is a frozen dataclass with
``from_json`` (accepts every version written before, and CANDLE's files) and ``to_json``
(what is written now), and validation that names the file, the key and the problem in one
line. Nothing outside this package calls ``json.loads``/``json.dumps`` on a checkpoint, task,
state or journal file.

This package is the innermost layer: it imports the standard library only, so the core
(`candle_restart.ckpt`) and every outer part may use it.

Modules:

* `jsonio`: the one safe JSON reader (depth, huge integers, UTF-8) every reader goes through.
* `trainstate`: the manifest inside a Keras checkpoint's ``train_state.npz``.
* `torchstate`: a PyTorch checkpoint's ``train_state.json``; `tensorfile`: the safetensors header
  of its ``model.h5``.
* `epochs`: ``ckpts/events.jsonl``, the checkpoint writer's epoch, commit and restart events.
* `localtier`: ``ckpts/local-tier.json``, where a two-tier run's newest checkpoint lies on a node, and
  ``tier-id.json``, the identity binding a node-local tier to its shared tier.
"""
