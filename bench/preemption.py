"""Preemption cost: batches lost and time from signal to exit, for models of ~1M and ~50M parameters.

A child process trains (epochs of 200 batches) under CandleCkptKeras and
``candle_restart.keras.fit``, reporting each batch through a FIFO.  The parent
sends SIGUSR1 after a few batches and measures:

* ``lost_batches``: batches finished before the signal that the committed
  checkpoint does not hold (goal: 0; at most 1);
* ``overrun_batches``: batches trained after the signal before the checkpoint;
* ``signal_to_exit_s``: from the signal to the child's exit with code 75
  (goal: well inside a 30 s grace window for 50M parameters).

Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict

from candle_restart.records.ckptinfo import CkptInfo

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BATCHES, BATCH = 200, 8


def child(ckpt_dir: str, fifo: str, width: int) -> None:
    import keras
    import numpy as np

    from candle_restart.keras import CandleCkptKeras, fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCHES * BATCH, width)).astype("float32")
    y = rng.normal(size=(BATCHES * BATCH, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((width,)), keras.layers.Dense(width), keras.layers.Dense(width), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    fd = os.open(fifo, os.O_WRONLY)

    class Report(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, object] | None = None) -> None:
            os.write(fd, f"{batch}\n".encode())

    ckpt = CandleCkptKeras({"epochs": 2, "ckpt_directory": ckpt_dir, "ckpt_save_best": False}, logger=None)
    fit(model, x, y, ckpt=ckpt, epochs=2, batch_size=BATCH, verbose=0, callbacks=[Report()])


class Result(TypedDict, total=False):
    """One width's measurement (``goal`` and ``met`` added by `main`)."""

    params: int
    batches_per_epoch: int
    signal_after_batch: int
    checkpoint_batch: int | None
    lost_batches: int
    overrun_batches: int
    signal_to_exit_s: float
    exit_code: int
    checkpoint_mb: float
    goal: str
    met: bool


def measure(width: int, signal_after: int = 5) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        fifo = Path(tmp) / "progress"
        os.mkfifo(fifo)
        fd = os.open(fifo, os.O_RDWR)
        proc = subprocess.Popen([sys.executable, __file__, "--child", f"{tmp}/ckpts", str(fifo), str(width)])
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        done, buffered, sent = 0, b"", 0.0
        while not sent:
            sel.select()
            buffered += os.read(fd, 4096)
            while b"\n" in buffered and not sent:
                line, buffered = buffered.split(b"\n", 1)
                done = int(line) + 1
                if done >= signal_after:
                    sent = time.monotonic()
                    proc.send_signal(signal.SIGUSR1)
        code = proc.wait()
        elapsed = time.monotonic() - sent
        os.close(fd)
        info = CkptInfo.read(Path(tmp) / "ckpts" / "last" / "ckpt-info.json")
        saved = info.position.batch if info.position is not None else None
        size_mb = sum(p.stat().st_size for p in (Path(tmp) / "ckpts" / "last").iterdir()) / 2**20
    params = 2 * width * width + 3 * width + 1
    return {
        "params": params,
        "batches_per_epoch": BATCHES,
        "signal_after_batch": done,
        "checkpoint_batch": saved,
        "lost_batches": max(0, done - (saved or 0)),
        "overrun_batches": (saved or 0) - done,
        "signal_to_exit_s": elapsed,
        "exit_code": code,
        "checkpoint_mb": size_mb,
    }


def main() -> None:
    widths = {"1M": 700, "50M": 5000}
    results = {name: measure(width) for name, width in widths.items()}
    for result in results.values():
        result["goal"] = "lost_batches <= 1, exit 75 well inside a 30 s grace window"
        result["met"] = (
            result["lost_batches"] <= 1 and result["exit_code"] == 75 and result["signal_to_exit_s"] < 30
        )
    print(
        json.dumps(
            {
                "bench": "preemption",
                "cores": os.cpu_count(),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
