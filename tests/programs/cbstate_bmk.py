"""A CANDLE-style script with the callbacks NT3 passes beside the checkpoint callback.

``python cbstate_bmk.py DIR EPOCHS [--drop-callback-state]``: restarts from ``DIR/ckpts`` when
a checkpoint is there (CANDLE's ``J = ckpt.restart(model)``, ``initial_epoch=J["epoch"]``),
trains to ``EPOCHS`` with ``callbacks=[ckpt, reduce_lr, early_stop, csv_logger]`` and writes
``DIR/result.npz`` (the weights, the learning rate, EarlyStopping's ``stopped_epoch``, the
History) and ``DIR/training.log`` (CSVLogger's file).  Keras APIs only, so it runs under every
Keras backend.  ``--drop-callback-state``: the restart forgets the callbacks' state (the
control that shows the test notices when it is lost).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np

from candle_restart.keras import CandleCkptKeras, cbstate


def main(out: Path, epochs: int, drop: bool) -> None:
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1)) + rng.normal(size=(64, 1))).astype("float32")
    xv = rng.normal(size=(32, 4)).astype("float32")
    yv = rng.normal(size=(32, 1)).astype("float32")  # unrelated to x: val_loss soon stops improving
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    gParameters = {
        "epochs": epochs,
        "ckpt_directory": str(out / "ckpts"),
        "ckpt_save_interval": 1,
        "ckpt_checksum": True,
    }
    ckpt = CandleCkptKeras(gParameters, verbose=False)
    J = ckpt.restart(model)
    if drop:
        cbstate._PENDING.clear()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=6)
    logger = keras.callbacks.CSVLogger(str(out / "training.log"))
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=epochs,
        initial_epoch=J["epoch"] if J else 0,
        validation_data=(xv, yv),
        callbacks=[ckpt, reduce_lr, stop, logger],
        shuffle=False,
        verbose=0,
    )
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(
        out / "result.npz",
        lr=np.asarray(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        stopped_epoch=np.asarray(stop.stopped_epoch),
        history=np.asarray(json.dumps({"epoch": history.epoch, "history": history.history})),
        **arrays,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), "--drop-callback-state" in sys.argv)
