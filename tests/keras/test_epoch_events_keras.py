"""A Keras training with asynchronous commits records every epoch and commit in ``events.jsonl``:
all of Keras' logged metrics, the commit thread's events keyed by epoch, and a restart's session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from candle_restart.keras import CandleCkptKeras
from candle_restart.records.epochs import read_events
from candle_restart.report.epochlog import read_epoch_log

X = np.random.default_rng(3).normal(size=(64, 4)).astype("float32")
Y = (X @ np.ones((4, 1), dtype="float32")).astype("float32")


def _model() -> Any:
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def _fit(directory: Path, epochs: int) -> tuple[Any, Any]:
    ckpt = CandleCkptKeras(
        {"epochs": epochs, "ckpt_directory": str(directory), "ckpt_save_best_metric": "val_loss"},
        verbose=False,
    )
    model = _model()
    J = ckpt.restart(model)
    history = model.fit(
        X,
        Y,
        validation_data=(X[:16], Y[:16]),
        batch_size=8,
        epochs=epochs,
        initial_epoch=J["epoch"] if J else 0,
        verbose=0,
        callbacks=[ckpt],
    )
    return ckpt, history


def test_epochs_and_asynchronous_commits_are_recorded(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"
    ckpt, history = _fit(directory, 3)
    assert ckpt.settings.async_commit  # the default: commits come from the commit thread
    _, again = _fit(directory, 5)
    events = read_events(directory)
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4, 5]
    assert again.history["val_loss"][:3] == history.history["val_loss"]  # History resumes with the rest
    for event, value in zip(epochs, again.history["val_loss"], strict=True):
        assert event.metric == "val_loss" and event.mode == "min" and event.value == value
        assert event.metrics is not None and set(event.metrics) == {"loss", "mae", "val_loss", "val_mae"}
    commits = [e for e in events if e.kind == "commit"]
    assert [e.epoch for e in commits] == [1, 2, 3, 4, 5]  # one commit at a time, every epoch (the default)
    assert all(e.bytes and e.bytes > 0 and e.path == f"epochs/{e.epoch:03d}" for e in commits)
    restarts = [(e.epoch, e.path) for e in events if e.kind == "restart"]
    assert restarts == [(None, None), (3, "epochs/003")]
    log = read_epoch_log(directory)
    assert log is not None and log.source == "events.jsonl"
    assert [s.resumed_from for s in log.sessions] == [None, 3] and (log.trained, log.redone) == (5, 0)
