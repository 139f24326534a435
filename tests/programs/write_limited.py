"""Entry for a test: train while no file may grow beyond 64 KiB (``RLIMIT_FSIZE``).

Every checkpoint write then fails with EFBIG ("File too large"), a real OS
error from a file that cannot be written, in the background commit thread.
Run as ``python -m tests.programs.write_limited CKPT_DIR``; the error must end
``fit`` from the training thread.
"""

from __future__ import annotations

import resource
import signal
import sys

import keras
import numpy as np

from candle_restart.keras import CandleCkptKeras


def main(directory: str) -> int:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing us
    x = np.random.default_rng(0).normal(size=(256, 64)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    ckpt = CandleCkptKeras({"epochs": 3, "ckpt_directory": directory, "ckpt_save_best": False}, verbose=False)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[ckpt])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
