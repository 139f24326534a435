"""CandleCkptKeras in-process: metrics and directions, model files, API forms, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import candle_restart
from candle_restart.ckpt import CkptLayout, CorruptCheckpointError, ParamError
from candle_restart.keras import CandleCheckpointCallback, CandleCkptKeras
from candle_restart.runtime.preempt import PreemptionRequest

X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
Y = (X.sum(axis=1, keepdims=True) > 0).astype("float32")


def _model(hidden: int = 8) -> Any:
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _fit(ckpt: CandleCkptKeras, model: Any, epochs: int, initial_epoch: int = 0) -> None:
    model.fit(
        X, Y, validation_data=(X, Y), epochs=epochs, initial_epoch=initial_epoch, verbose=0, callbacks=[ckpt]
    )


def _params(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"epochs": 3, "ckpt_directory": str(tmp_path / "ckpts"), **extra}


def test_best_checkpoint_loads_with_plain_keras(tmp_path: Path) -> None:
    ckpt = CandleCkptKeras(_params(tmp_path), verbose=False)
    model = _model()
    _fit(ckpt, model, 3)
    loaded = keras.models.load_model(tmp_path / "ckpts" / "best" / "model.keras")
    best = CkptLayout.at(tmp_path / "ckpts").linked_epoch(tmp_path / "ckpts" / "best")
    assert best is not None
    assert loaded.predict(X, verbose=0).shape == (64, 1)


def test_accuracy_is_maximised_in_auto_mode(tmp_path: Path) -> None:
    ckpt = CandleCkptKeras(_params(tmp_path, ckpt_save_best_metric="val_accuracy"), verbose=False)
    model = _model()
    ckpt.set_model(model)
    _fit(ckpt, model, 1)
    assert ckpt.direction("val_accuracy") == "+"
    assert ckpt.direction("val_loss") == "-"
    assert (
        CandleCkptKeras(_params(tmp_path, ckpt_save_best_mode="max"), verbose=False).direction("val_loss")
        == "+"
    )


def test_direction_comes_from_the_metric_object_in_auto_mode(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="zorp")])
    ckpt = CandleCkptKeras(_params(tmp_path, epochs=2, ckpt_save_best_metric="val_zorp"), verbose=False)
    _fit(ckpt, model, 2)
    assert ckpt.direction("val_zorp") == "+"
    assert ckpt.best_mode == "max"


def test_validation_every_other_epoch_is_not_an_error(tmp_path: Path) -> None:
    ckpt = CandleCkptKeras(_params(tmp_path, epochs=4, ckpt_keep_mode="all"), verbose=False)
    _model().fit(X, Y, validation_data=(X, Y), validation_freq=2, epochs=4, verbose=0, callbacks=[ckpt])
    assert CkptLayout.at(tmp_path / "ckpts").list_epochs() == [1, 2, 3, 4]


# `preemption`: Keras calls no callback when fit raises, so the callback's handlers stay armed.
def test_metric_absent_from_logs_fails_before_writing(tmp_path: Path, preemption: PreemptionRequest) -> None:
    ckpt = CandleCkptKeras(_params(tmp_path, ckpt_save_best_metric="val_f2_score"), verbose=False)
    with pytest.raises(ParamError, match=r"ckpt_save_best_metric: 'val_f2_score' is not among the metrics"):
        _fit(ckpt, _model(), 1)
    assert CkptLayout.at(tmp_path / "ckpts").list_epochs() == []


def test_metric_of_unknown_direction_asks_for_a_mode(tmp_path: Path) -> None:
    ckpt = CandleCkptKeras(_params(tmp_path), verbose=False)
    ckpt.set_model(_model())
    with pytest.raises(ParamError, match="ckpt_save_best_mode: cannot tell whether 'val_zorp'"):
        ckpt.direction("val_zorp")


def test_weights_only_and_older_api_forms(tmp_path: Path) -> None:
    params = _params(tmp_path, ckpt_save_weights_only=True)
    ckpt = CandleCheckpointCallback(params, verbose=False)
    model = _model()
    _fit(ckpt, model, 2)
    assert (tmp_path / "ckpts" / "last" / "model.weights.h5").is_file()
    fresh = _model()
    J = candle_restart.restart(params, fresh)
    assert J is not None and J["epoch"] == 2 and J["model_file"] == "model.weights.h5"
    for a, b in zip(model.variables, fresh.variables, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert fresh.optimizer.iterations.numpy() == model.optimizer.iterations.numpy()
    assert candle_restart.CandleCkptKeras is CandleCkptKeras


def test_state_of_another_architecture_is_refused_before_assigning(tmp_path: Path) -> None:
    ckpt = CandleCkptKeras(_params(tmp_path), verbose=False)
    _fit(ckpt, _model(), 1)
    other = _model(hidden=5)
    before = [np.asarray(v).copy() for v in other.variables]
    with pytest.raises(CorruptCheckpointError, match=r"train_state\.npz: model: variable 0"):
        CandleCkptKeras(_params(tmp_path), verbose=False).restart(other)
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, other.variables, strict=True))


def test_caller_params_unchanged_and_numpy_epochs(tmp_path: Path) -> None:
    params = _params(tmp_path, epochs=np.int64(2), ckpt_checksum="True")
    snapshot = dict(params)
    ckpt = CandleCkptKeras(params, verbose=False)
    _fit(ckpt, _model(), 2)
    assert params == snapshot
    assert CkptLayout.at(tmp_path / "ckpts").list_epochs() == [1, 2]


def test_importing_the_core_loads_no_framework() -> None:
    code = (
        "import sys, candle_restart, candle_restart.ckpt, candle_restart.cli;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('tensorflow','keras','parsl','torch')];"
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stdout + proc.stderr
