"""Blocked time per checkpoint: CandleCkptKeras (asynchronous commit) vs a synchronous Keras ``model.save``.

For models of about 1M, 5M and 50M parameters (two Dense layers, Adam built, so
the optimizer state is 2x the weights), in the same process and run:

* ``ours_s``: how long ``save_epoch`` keeps the training thread (the
  snapshot into host memory); the commit (``commit_s``, write + fsync +
  rename) then runs in the background and is waited for outside the timing;
* ``keras_save_s``: ``model.save`` of the same model to a ``.keras`` file
  in the same directory (no fsync: Keras does not make one);
* ``ratio`` = median ours / median Keras (goal: at most 0.2);
* ``memcpy_floor_s``: the state's bytes (weights and optimizer variables) over the memory-copy
  speed measured in the same run (``np.copyto`` into a buffer already touched, as the snapshot's
  reused host buffers are; one sample right before each checkpoint); ``vs_floor`` = median ours
  / median floor (goal: at most 2).

The first checkpoint allocates the host buffers every later one reuses; it
is reported apart (``first_ours_s``) and left out of the medians.
Usage: ``python bench/ckpt_blocking.py [PARAMS ...]``; prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import dense_model

GOAL = 0.2
FLOOR_GOAL = 2.0  # training blocked per checkpoint over the memory-copy floor


class MemcpyFloor:
    """Copies ``nbytes`` from memory to memory (both buffers touched first), one timed sample per call.

    Sampled right before each checkpoint, so the floor and ours see the same
    moment of a noisy machine (a floor measured once, apart, moved by 1.5x between runs).
    """

    def __init__(self, nbytes: int) -> None:
        self._src = np.ones(nbytes, dtype=np.uint8)
        self._dst = np.zeros_like(self._src)
        self.samples: list[float] = []

    def sample(self) -> None:
        start = time.perf_counter()
        np.copyto(self._dst, self._src)
        self.samples.append(time.perf_counter() - start)


def measure(n_params: int, repeats: int) -> dict[str, object]:
    from candle_restart.keras import CandleCkptKeras

    model = dense_model(n_params)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        ckpt = CandleCkptKeras(
            {
                "epochs": 10**6,
                "ckpt_directory": f"{tmp}/ckpts",
                "ckpt_save_best": False,
                "ckpt_keep_limit": 2,
            },
            logger=None,
        )
        ckpt.set_model(model)
        ckpt.on_train_begin()  # inside a training, commits run in the background
        ours, commits, keras_save = [], [], []
        state_bytes = sum(int(v.numpy().nbytes) for v in [*model.weights, *model.optimizer.variables])
        floor = MemcpyFloor(state_bytes)
        for i in range(repeats + 1):
            floor.sample()
            start = time.perf_counter()
            ckpt.save_epoch(i + 1)
            ours.append(time.perf_counter() - start)
            ckpt.wait_for_commit()
            commits.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.save(Path(tmp) / "plain.keras")
            keras_save.append(time.perf_counter() - start)
        ckpt.on_train_end()
    ours_s, keras_s = statistics.median(ours[1:]), statistics.median(keras_save[1:])
    floor_s = statistics.median(floor.samples[1:])
    return {
        "params": model.count_params(),
        "repeats": repeats,
        "first_ours_s": round(ours[0], 4),
        "ours_s": round(ours_s, 4),
        "commit_s": round(statistics.median(commits[1:]), 4),
        "keras_save_s": round(keras_s, 4),
        "ratio": round(ours_s / keras_s, 4),
        "goal": f"<= {GOAL}",
        "met": ours_s / keras_s <= GOAL,
        "state_mb": round(state_bytes / 1e6, 1),
        "memcpy_floor_s": round(floor_s, 4),
        "vs_floor": {
            "ratio": round(ours_s / floor_s, 3),
            "goal": f"<= {FLOOR_GOAL:g} x state bytes / memcpy speed",
            "met": ours_s / floor_s <= FLOOR_GOAL,
        },
    }


def main() -> None:
    sizes = [int(x) for x in sys.argv[1:]] or [1_000_000, 5_000_000, 50_000_000]
    results = {f"{n // 1_000_000}M": measure(n, 25 if n < 10_000_000 else 7) for n in sizes}
    print(json.dumps({"bench": "ckpt_blocking", "cores": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
