"""The records layer: one typed reader and writer per on-disk format.

Every file this project writes, and every file of CANDLE's it reads, has exactly one module
here that parses it and one that writes it. Each record is a frozen dataclass with the same
names:

* ``Record.from_json(data, source)``: a parsed value (accepts every version written before, and
  CANDLE's files: a missing optional key gets its default; an unknown key is kept or ignored as
  the record says); a value of the wrong type is the record's error (a
  `candle_restart.errors.CkptError`), one line ``<file>: <key>: <problem>`` from the one field
  check, `fields.Fields`;
* ``record.to_json()``: the object written now; ``record.to_bytes()``: the file's content;
* ``Record.read(path)``: the record in a file.

A file of one record a line (``journal.jsonl``/``runs.jsonl``, ``events.jsonl``, a search log)
has ``from_json``/``to_json`` per line and a module function that reads the file.  No reader
hands out a dict, and nothing outside this package calls ``json.loads``/``json.dumps`` on a
checkpoint, task, state or journal file.

This package is the innermost layer: it imports the standard library only, so the core
(`candle_restart.ckpt`) and every outer part may use it.

Modules:

* `jsonio`: the one safe JSON reader (depth, huge integers, UTF-8) every reader goes through;
  `fields`: the one field check every ``from_json`` goes through.
* `trainstate`: the manifest inside a Keras checkpoint's ``train_state.npz``.
* `torchstate`: a PyTorch checkpoint's ``train_state.json``; `tensorfile`: the safetensors header
  of its ``model.h5``.
* `epochs`: ``ckpts/events.jsonl``, the checkpoint writer's epoch, commit and restart events.
* `localtier`: ``ckpts/local-tier.json``, where a two-tier run's newest checkpoint lies on a node, and
  ``tier-id.json``, the identity binding a node-local tier to its shared tier.
"""
