"""CANDLE's public checkpoint names, both generations, under the same names; `MultiGPUCheckpoint`;
the missing-metric warning of a ``fit`` without validation data."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import candle_restart

# The checkpoint names of candle_lib's ``candle/__init__.py``, develop and master branches.
DEVELOP_CANDLE = ["CandleCkptKeras", "CandleCkpt", "ModelType", "MultiGPUCheckpoint", "CandleCkptPyTorch"]
MASTER_CANDLE = ["CandleCheckpointCallback", "MultiGPUCheckpoint", "restart"]
# ``candle.ckpt_utils`` (develop) and ``candle.ckpt_keras_utils`` (both generations).
CKPT_UTILS = [
    "CandleCkpt",
    "CandleCkptModel",
    "ModelType",
    "ParamRequired",
    "ParamType",
    "ckpt_defs",
    "ckpt_parser",
]
CKPT_KERAS_UTILS = ["CandleCheckpointCallback", "CandleCkptKeras", "MultiGPUCheckpoint", "restart"]
CKPT_PYTORCH_UTILS = ["CandleCkptPyTorch"]  # ``candle.ckpt_pytorch_utils`` (develop)
# Names that import torch when resolved: checked by name only where torch is not installed
# (tests/torch/test_names.py resolves them where it is).
NEEDS_TORCH = {"CandleCkptPyTorch"}
TORCH = importlib.util.find_spec("torch") is not None

X = np.random.default_rng(6).normal(size=(48, 4)).astype("float32")
Y = X.sum(axis=1, keepdims=True).astype("float32")


@pytest.mark.parametrize(
    "module, names",
    [
        ("candle_restart", DEVELOP_CANDLE + MASTER_CANDLE),
        ("candle_restart.ckpt_utils", CKPT_UTILS),
        ("candle_restart.ckpt_keras_utils", CKPT_KERAS_UTILS),
        ("candle_restart.ckpt_pytorch_utils", CKPT_PYTORCH_UTILS),
    ],
)
def test_every_candle_name_is_exported_under_its_name(module: str, names: list[str]) -> None:
    if module.endswith("pytorch_utils") and not TORCH:
        pytest.skip("candle_restart.ckpt_pytorch_utils imports torch, which is not installed here")
    mod = importlib.import_module(module)
    resolve = [n for n in names if TORCH or n not in NEEDS_TORCH]
    missing = [n for n in names if n not in mod.__all__] + [
        n for n in resolve if getattr(mod, n, None) is None
    ]
    assert missing == []


def test_the_names_are_the_implementations() -> None:
    from candle_restart import ckpt_keras_utils, ckpt_utils
    from candle_restart.keras import CandleCkptKeras

    assert candle_restart.CandleCkptKeras is CandleCkptKeras is ckpt_keras_utils.CandleCkptKeras
    assert (
        issubclass(CandleCkptKeras, ckpt_utils.CandleCkpt)
        and candle_restart.CandleCkpt is ckpt_utils.CandleCkpt
    )
    assert [m.name for m in ckpt_utils.ModelType] == ["KERAS", "PYTORCH"]
    payload = ckpt_utils.CandleCkptModel(ckpt_utils.ModelType.KERAS, "model", "optimizer")
    assert payload.model_type is candle_restart.ModelType.KERAS and payload.payload == ("model", "optimizer")


def test_multi_gpu_checkpoint_saves_the_wrapped_single_device_model(tmp_path: Path) -> None:
    keras.utils.set_random_seed(3)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)], name="single")
    inputs = keras.Input((4,))
    wrapper = keras.Model(
        inputs, keras.layers.Identity()(inner(inputs))
    )  # layers[-2] is the replicated model
    wrapper.compile(optimizer="adam", loss="mse")
    path = tmp_path / "best.keras"
    check = candle_restart.MultiGPUCheckpoint(str(path), monitor="loss", save_best_only=True)
    wrapper.fit(X, Y, epochs=2, batch_size=16, verbose=0, callbacks=[check])
    loaded = keras.models.load_model(path)
    assert loaded.name == "single" and len(loaded.layers) == 2
    for a, b in zip(loaded.weights, inner.weights, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_plain_model_is_saved_whole(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path / "m.keras"
    model.fit(
        X, Y, epochs=1, verbose=0, callbacks=[candle_restart.MultiGPUCheckpoint(str(path), monitor="loss")]
    )
    assert len(keras.models.load_model(path).layers) == 1


def _fit_without_validation(directory: Path, **params: Any) -> Path:
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    ckpt = candle_restart.CandleCkptKeras({"epochs": 3, "ckpt_directory": str(directory), **params})
    model.fit(X, Y, epochs=3, batch_size=16, verbose=0, callbacks=[ckpt])
    return directory


def test_fit_without_validation_data_warns_once_like_model_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _fit_without_validation(tmp_path / "ckpts")
    out = capsys.readouterr().out.splitlines()
    assert out.count("Can save best model only with val_loss available.") == 1  # Keras' words, once
    log = (directory / "ckpt.log").read_text()
    assert "current=nan" not in log and log.count("Can save best model only with val_loss available.") == 1
    assert not (directory / "best").exists()  # nan never became a best
    assert sorted(p.name for p in (directory / "epochs").iterdir()) == ["001", "002", "003"]
