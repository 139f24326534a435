"""A CANDLE benchmark baseline in candle_lib master's API (``candle.restart`` and ``candle.CandleCheckpointCallback``)."""

from __future__ import annotations

import os
from typing import Any

import candle
import compat_bmk
import numpy as np


def initialize_parameters() -> dict[str, Any]:
    bmk = compat_bmk.CompatBmk(
        compat_bmk.file_path, "compat_default_model.txt", "keras", prog="compat_baseline", desc="compat"
    )
    return candle.finalize_parameters(bmk)


def run(gParameters: dict[str, Any]) -> Any:
    candle.set_seed(gParameters["rng_seed"])
    x_train, y_train, x_val, y_val = compat_bmk.load_data(gParameters)
    model = compat_bmk.build_model(gParameters, x_train.shape[1])

    initial_epoch = 0
    J = candle.restart(gParameters, model)
    if J is not None:
        initial_epoch = J["epoch"]

    kerasDefaults = candle.keras_default_config()
    optimizer = candle.build_optimizer(gParameters["optimizer"], gParameters["learning_rate"], kerasDefaults)
    model.compile(loss="mse", optimizer=optimizer, metrics=["mae"])

    candleRemoteMonitor = candle.CandleRemoteMonitor(params=gParameters)
    timeoutMonitor = candle.TerminateOnTimeOut(gParameters["timeout"])
    ckpt = candle.CandleCheckpointCallback(gParameters, verbose=False)
    history = model.fit(
        x_train,
        y_train,
        batch_size=gParameters["batch_size"],
        epochs=gParameters["epochs"],
        initial_epoch=initial_epoch,
        verbose=0,
        shuffle=False,  # the same batches in a resumed and an uninterrupted run
        validation_data=(x_val, y_val),
        callbacks=[candleRemoteMonitor, timeoutMonitor, ckpt],
    )
    # Not an .h5: CANDLE's cr-1.sh counts every *.h5 of the run as a checkpoint.
    np.savez(os.path.join(gParameters["output_dir"], "final.npz"), *model.get_weights())
    return history


def main() -> None:
    run(initialize_parameters())


if __name__ == "__main__":
    main()
