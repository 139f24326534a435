"""Writes the old-format checkpoints this directory holds (``keras/``, ``weights_only/``).

A checkpoint of the older format has every tensor twice: in the model file
and again in a ``train_state.npz`` that holds all of them.  The files here
were written by the code of that time (before the single-copy format), by
running this script with that code first on the import path::

    PYTHONPATH=<checkout of the older code> python tests/keras/old_format/generate.py

Each directory holds ``ckpts/`` (the checkpoint of epoch 1 of 2).  The test
(`tests/keras/test_one_copy.py`) restarts from ``ckpts/`` with today's code,
trains epoch 2 and compares bit for bit with epoch 2 trained on from the
checkpoint's own arrays assigned by hand, in the same process (the continuation
``write`` also stores, ``expected.npz``, is only used for new-format cases: a
stored continuation holds the float rounding of the machine that wrote it).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
X = np.random.default_rng(11).normal(size=(64, 4)).astype("float32")
Y = X.sum(axis=1, keepdims=True).astype("float32")
BATCH = 16


def model(compiled: bool = True) -> Any:
    """The fixture's model: Dense, Dropout (seed-generator state), Dense; Adam."""
    import keras

    keras.utils.set_random_seed(5)
    built = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1),
        ]
    )
    if compiled:
        compile_model(built)
    return built


def compile_model(built: Any) -> None:
    built.compile(optimizer="adam", loss="mse")


def params(directory: Path, weights_only: bool) -> dict[str, Any]:
    return {
        "epochs": 2,
        "ckpt_directory": str(directory),
        "ckpt_save_weights_only": weights_only,
        "ckpt_checksum": True,
        "ckpt_save_best": False,
    }


def variables(built: Any) -> dict[str, np.ndarray]:
    found = {f"model/{i}": np.asarray(v) for i, v in enumerate(built.variables)}
    found.update({f"optimizer/{i}": np.asarray(v) for i, v in enumerate(built.optimizer.variables)})
    return found


def write(dest: Path, weights_only: bool) -> None:
    from candle_restart.keras import CandleCkptKeras

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    built = model()
    callback = CandleCkptKeras(params(dest / "ckpts", weights_only), logger=None)
    built.fit(X, Y, epochs=1, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[callback])
    built.fit(X, Y, epochs=2, initial_epoch=1, batch_size=BATCH, shuffle=False, verbose=0)
    arrays: dict[str, Any] = variables(built)  # savez types its keywords as allow_pickle's too
    np.savez(dest / "expected.npz", **arrays)
    for leftover in ("ckpt.log", ".writer.lock", ".writer.lock.holder"):
        (dest / "ckpts" / leftover).unlink(missing_ok=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.append(str(HERE.parents[2]))  # after PYTHONPATH: the older code comes first
    write(HERE / "keras", weights_only=False)
    write(HERE / "weights_only", weights_only=True)
