"""Blocked time per checkpoint: CandleCkptKeras (full commit protocol) vs a plain Keras model.save.

Prints one JSON object.  The ratio is ours / Keras' for the same model in the
same run; the foundation commits synchronously (the async writer is a later
issue), so expect a ratio above 1: we write the model file *and* the exact
resume state, and fsync both.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build(params: int) -> object:
    import keras

    width = int((params / 2) ** 0.5)
    model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(width), keras.layers.Dense(width)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def measure(n_params: int, repeats: int) -> dict[str, float]:
    from candle_restart.keras import CandleCkptKeras

    model = build(n_params)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = CandleCkptKeras(
            {"epochs": 10**6, "ckpt_directory": f"{tmp}/ckpts", "ckpt_save_best": False}, logger=None
        )
        ckpt.set_model(model)
        ours, keras_save = [], []
        for i in range(repeats):
            t = time.perf_counter()
            ckpt.save_epoch(i + 1)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.save(Path(tmp) / "plain.keras")  # type: ignore[attr-defined]
            keras_save.append(time.perf_counter() - t)
    ours_s, keras_s = statistics.median(ours), statistics.median(keras_save)
    return {
        "params": model.count_params(),
        "ours_s": ours_s,
        "keras_save_s": keras_s,
        "ratio": ours_s / keras_s,
    }  # type: ignore[attr-defined]


def main() -> None:
    sizes = [int(x) for x in sys.argv[1:]] or [1_000_000, 50_000_000]
    results = {f"{n // 1_000_000}M": measure(n, 5 if n < 10_000_000 else 3) for n in sizes}
    print(json.dumps({"bench": "ckpt_blocking", "cores": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
