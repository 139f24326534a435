"""candle_restart.keras.fit resumes exactly inside an epoch for each input kind it can position,
and says so when it cannot.  In-process: the interruption is a real preemption request served
at a batch end (Preempted raised), then a fresh model restarts from the committed checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from candle_restart.keras import CandleCkptKeras, fit
from candle_restart.runtime.preempt import REQUEST, Preempted
from tests.keras.requests import RequestAt

X = np.random.default_rng(1).normal(size=(96, 4)).astype("float32")
Y = X.sum(axis=1, keepdims=True).astype("float32")
EPOCHS, BATCH = 2, 16  # 6 batches an epoch


def _model() -> Any:
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def _data(kind: str) -> dict[str, Any]:
    if kind == "arrays":
        return {"x": X, "y": Y, "shuffle": False}
    if kind == "shuffled":
        return {"x": X, "y": Y, "shuffle": True, "seed": 5}
    import tensorflow as tf  # only these two kinds need it: the others run under every backend

    if kind == "dataset":
        return {"x": tf.data.Dataset.from_tensor_slices((X, Y)).batch(BATCH)}
    return {
        "x": lambda epoch: tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(96, seed=epoch).batch(BATCH)
    }


def _ckpt(tmp_path: Path, name: str, **extra: Any) -> CandleCkptKeras:
    return CandleCkptKeras(
        {"epochs": EPOCHS, "ckpt_directory": str(tmp_path / name), "ckpt_save_best": False, **extra},
        logger=None,
    )


@pytest.mark.parametrize(
    "kind, asynchronous",
    [
        pytest.param("arrays", True, marks=pytest.mark.backends),
        ("arrays", False),
        pytest.param("shuffled", True, marks=pytest.mark.backends),
        ("dataset", True),
        ("epoch_function", True),
    ],
)
def test_interrupted_and_resumed_fit_matches_an_uninterrupted_one(
    tmp_path: Path, kind: str, asynchronous: bool
) -> None:
    whole = _model()
    fit(whole, ckpt=_ckpt(tmp_path, "a"), epochs=EPOCHS, batch_size=BATCH, verbose=0, **_data(kind))

    first, ckpt = _model(), _ckpt(tmp_path, "b", ckpt_async=asynchronous)
    with pytest.raises(Preempted):
        fit(
            first,
            ckpt=ckpt,
            epochs=EPOCHS,
            batch_size=BATCH,
            verbose=0,
            callbacks=[RequestAt(1, 2)],
            **_data(kind),
        )
    ckpt._disarm()
    REQUEST.clear()
    resumed, again = _model(), _ckpt(tmp_path, "b", ckpt_async=asynchronous)
    fit(resumed, ckpt=again, epochs=EPOCHS, batch_size=BATCH, verbose=0, **_data(kind))
    assert again.restarted is not None and again.restarted["position"] == {"epoch": 2, "batch": 3}
    for a, b in zip(whole.variables, resumed.variables, strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_a_generator_cannot_be_positioned_so_the_epoch_is_rerun_and_logged(tmp_path: Path) -> None:
    def batches() -> Any:
        while True:
            for i in range(0, 96, BATCH):
                yield X[i : i + BATCH], Y[i : i + BATCH]

    first, ckpt = _model(), _ckpt(tmp_path, "g")
    with pytest.raises(Preempted):
        fit(
            first,
            batches(),
            ckpt=ckpt,
            epochs=EPOCHS,
            steps_per_epoch=6,
            verbose=0,
            callbacks=[RequestAt(1, 2)],
        )
    ckpt._disarm()
    REQUEST.clear()
    lines: list[str] = []
    again = _ckpt(tmp_path, "g")
    again.info = lines.append  # type: ignore[method-assign, assignment]
    fit(_model(), batches(), ckpt=again, epochs=EPOCHS, steps_per_epoch=6, verbose=0)
    assert any("cannot position generator inside an epoch; rerunning epoch 2" in line for line in lines)


def test_time_based_checkpoints_are_taken_inside_epochs(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, "t", ckpt_save_seconds=1e-6, ckpt_keep_mode="all")
    lines: list[str] = []
    ckpt.info = lines.append  # type: ignore[method-assign, assignment]
    fit(_model(), X, Y, ckpt=ckpt, epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
    midepoch = [line for line in lines if line.startswith("writing mid-epoch checkpoint: epoch 1 batch ")]
    assert len(midepoch) == 5  # after batches 1..5; the 6th is the epoch end


def test_validation_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="validation_split"):
        fit(_model(), X, Y, ckpt=_ckpt(tmp_path, "v"), epochs=1, validation_split=0.2)
