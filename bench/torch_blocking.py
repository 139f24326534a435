"""Blocked time per checkpoint: CandleCkptPyTorch (asynchronous commit) vs a synchronous ``torch.save``.

For models of about 1M and 50M parameters (two square ``nn.Linear`` layers, AdamW after one
step, so the optimizer state is 2x the weights), in the same process and run:

* ``ours_s``: how long training is blocked by a checkpoint: ``save_epoch`` (small tensors and RNG
  states copied into reused host buffers) plus what the next ``optimizer.step()`` waits for the
  trained tensors' copy, made meanwhile by the commit thread while a forward and backward pass of
  ``BATCH`` rows runs (``pass_s``; ``no_overlap_s``: the same with the step right after the
  checkpoint, nothing to overlap); the commit (``commit_s``: write, fsync, rename) runs in the
  background and is waited for outside the timing; ``copy_s``: one thread's plain memory copy
  of the same trained tensors: what ``no_overlap_s`` is made of (the waiting thread and the
  commit thread share that copy, so it is at most about this, less where both have a free core);
* ``torch_save_s``: ``torch.save`` of the model's and optimizer's state dicts (CANDLE's
  ``write_model_backend``) into the same directory (no fsync: torch.save makes none);
* ``blocked``: median ours / median torch.save (goal: at most 0.1);
* ``bytes``: bytes a checkpoint writes (``model.h5`` + ``train_state.json``) / bytes of the
  state's tensors (goal: at most 1.05: each tensor written once).

The first checkpoint allocates the host buffers every later one reuses; it is reported apart
(``first_ours_s``) and left out of the medians.  Without torch installed the bench says so and
is skipped.  Usage: ``python bench/torch_blocking.py [PARAMS ...]``; prints one JSON object.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BLOCKED_GOAL = 0.1
BYTES_GOAL = 1.05
BATCH = 32


def measure(n_params: int, repeats: int) -> dict[str, object]:
    import numpy as np
    import torch

    from candle_restart.torch import CandleCkptPyTorch
    from candle_restart.torch.snapshot import DEFER_FROM

    width = int((n_params / 2) ** 0.5)
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Linear(width, width))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, width)).sum().backward()
    opt.step()
    state_bytes = sum(t.nbytes for t in model.state_dict().values()) + sum(
        t.nbytes for s in opt.state_dict()["state"].values() for t in s.values()
    )
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        ckpt = CandleCkptPyTorch(
            {
                "epochs": 10**6,
                "ckpt_directory": f"{tmp}/ckpts",
                "ckpt_save_best": False,
                "ckpt_keep_limit": 2,
            },
            logger=None,
        )
        ckpt.set_model({"model": model, "optimizer": opt})
        ckpt.on_train_begin()  # inside a training, commits run in the background
        ours, no_overlap, passes, commits, plain, written, copies = [], [], [], [], [], [], []
        trained = [p.detach() for p in model.parameters()] + [
            t for s in opt.state.values() for t in s.values() if t.nbytes >= DEFER_FROM
        ]
        spare = [torch.empty_like(t) for t in trained]
        x = torch.randn(BATCH, width)
        for i in range(repeats + 1):
            start = time.perf_counter()
            ckpt.save_epoch(2 * i + 1)
            saved = time.perf_counter() - start
            begun = time.perf_counter()
            opt.zero_grad()
            model(x).pow(2).mean().backward()  # the next batch, while the commit thread copies
            passes.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            ckpt.wait_for_snapshot()  # what opt.step()'s pre-hook waits for
            ours.append(saved + time.perf_counter() - begun)
            ckpt.wait_for_commit()
            commits.append(time.perf_counter() - start)
            written.append(sum(p.stat().st_size for p in (Path(tmp) / "ckpts" / "last").iterdir()))
            start = time.perf_counter()
            ckpt.save_epoch(2 * i + 2)
            ckpt.wait_for_snapshot()
            no_overlap.append(time.perf_counter() - start)
            ckpt.wait_for_commit()
            start = time.perf_counter()
            for buffer, tensor in zip(spare, trained, strict=True):
                np.copyto(buffer.numpy(), tensor.numpy())
            copies.append(time.perf_counter() - start)
            start = time.perf_counter()
            torch.save(
                {
                    "epoch": i,
                    "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": opt.state_dict(),
                },
                Path(tmp) / "plain.pt",
            )
            plain.append(time.perf_counter() - start)
        ckpt.on_train_end()
    ours_s, plain_s = statistics.median(ours[1:]), statistics.median(plain[1:])
    bytes_ratio = statistics.median(written) / state_bytes
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "repeats": repeats,
        "first_ours_s": round(ours[0], 4),
        "ours_s": round(ours_s, 4),
        "pass_s": round(statistics.median(passes[1:]), 4),
        "no_overlap_s": round(statistics.median(no_overlap[1:]), 4),
        "copy_s": round(statistics.median(copies[1:]), 4),
        "commit_s": round(statistics.median(commits[1:]), 4),
        "torch_save_s": round(plain_s, 4),
        "state_bytes": state_bytes,
        "blocked": {
            "ratio": round(ours_s / plain_s, 4),
            "goal": f"<= {BLOCKED_GOAL}",
            "met": ours_s / plain_s <= BLOCKED_GOAL,
        },
        "bytes": {
            "ratio": round(bytes_ratio, 4),
            "goal": f"<= {BYTES_GOAL}",
            "met": bytes_ratio <= BYTES_GOAL,
        },
    }


def main() -> None:
    if importlib.util.find_spec("torch") is None:
        print(
            json.dumps({"bench": "torch_blocking", "skipped": "torch is not installed in this environment"})
        )
        return
    sizes = [int(x) for x in sys.argv[1:]] or [1_000_000, 50_000_000]
    results = {f"{n // 1_000_000}M": measure(n, 15 if n < 10_000_000 else 5) for n in sizes}
    print(json.dumps({"bench": "torch_blocking", "cores": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
