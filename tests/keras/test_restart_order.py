"""Restart before and after ``model.compile``, with both of CANDLE's API generations, resumes exactly.

CANDLE's benchmarks and docs restart before compiling.  Each case trains
two epochs, then a fresh model (built the same way) restarts from the
checkpoint in the case's order of calls and trains the remaining two; its
model and optimizer variables must equal, bit for bit, those of a run never
interrupted.  In-process, real training, real files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from candle_restart.ckpt import CorruptCheckpointError, RestartError
from candle_restart.keras import CandleCheckpointCallback, CandleCkptKeras, restart
from candle_restart.keras.state import pending_optimizer, saved_arrays

X = np.random.default_rng(2).normal(size=(128, 6)).astype("float32")
Y = np.tanh(X @ np.linspace(-1, 1, 6, dtype="float32")[:, None]).astype("float32")
EPOCHS, FIRST = 4, 2


def _build() -> Any:
    """Built (an Input layer), not compiled, like a CANDLE benchmark's model before restart."""
    keras.utils.set_random_seed(11)
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1),
        ]
    )


def _compile(model: Any, optimizer: str = "adam") -> None:
    if optimizer == "adam":
        schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=5, decay_rate=0.9)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    else:
        model.compile(optimizer=optimizer, loss="mse")


def _fit(model: Any, ckpt: Any, epochs: int, initial_epoch: int = 0) -> None:
    model.fit(
        X,
        Y,
        validation_data=(X[:32], Y[:32]),
        batch_size=16,
        shuffle=False,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        callbacks=[ckpt],
    )


def _state(model: Any) -> list[bytes]:
    return [np.asarray(v).tobytes() for v in [*model.variables, *model.optimizer.variables]]


def _params(directory: Path) -> dict[str, Any]:
    return {"epochs": EPOCHS, "ckpt_directory": str(directory), "ckpt_checksum": True}


def _interrupted(directory: Path) -> None:
    """Two of the four epochs, checkpointed (the process 'dies' after them)."""
    model = _build()
    _compile(model)
    _fit(model, CandleCkptKeras(_params(directory), logger=None), FIRST)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    model = _build()
    _compile(model)
    _fit(model, CandleCkptKeras(_params(tmp_path_factory.mktemp("whole") / "ckpts"), logger=None), EPOCHS)
    return _state(model)


@pytest.mark.parametrize("api", ["CandleCkptKeras", "restart(gParameters, model)"])
@pytest.mark.parametrize("order", ["restart, then compile", "compile, then restart"])
def test_resume_is_bitwise_exact_in_either_order(
    tmp_path: Path, uninterrupted: list[bytes], api: str, order: str
) -> None:
    directory = tmp_path / "ckpts"
    _interrupted(directory)
    params = _params(directory)
    model = _build()
    before = order.startswith("restart")
    if not before:
        _compile(model)
    if api == "CandleCkptKeras":
        ckpt: CandleCkptKeras = CandleCkptKeras(params, verbose=False)
        ckpt.set_model(model)
        J = ckpt.restart(model)
    else:
        J = restart(params, model, verbose=False)
    assert J is not None and J["epoch"] == FIRST
    assert (pending_optimizer(model) is not None) == before  # parked only while there is no optimizer
    if before:
        _compile(model)
    if api != "CandleCkptKeras":
        ckpt = CandleCheckpointCallback(params, verbose=False)
    _fit(model, ckpt, EPOCHS, initial_epoch=J["epoch"])
    assert pending_optimizer(model) is None
    assert _state(model) == uninterrupted
    log = (directory / "ckpt.log").read_text()
    assert ("optimizer state applied (9 variables)" in log) == before


def test_without_the_parked_optimizer_state_the_resume_is_not_exact(
    tmp_path: Path, uninterrupted: list[bytes]
) -> None:
    """Control: restoring weights and seed state alone (what CANDLE did) ends elsewhere."""
    directory = tmp_path / "ckpts"
    _interrupted(directory)
    model = _build()
    J = restart(_params(directory), model, verbose=False)
    assert J is not None
    from candle_restart.keras import state

    del state._PENDING[model]  # what was lost before: the optimizer values
    _compile(model)
    _fit(model, CandleCheckpointCallback(_params(directory), verbose=False), EPOCHS, J["epoch"])
    assert _state(model) != uninterrupted


def test_an_uncompiled_restart_never_calls_a_healthy_checkpoint_corrupt(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"
    _interrupted(directory)
    model = _build()
    ckpt = CandleCkptKeras({**_params(directory), "ckpt_restart_mode": "required"}, logger=None)
    J = ckpt.restart(model)  # raised CorruptCheckpointError ("optimizer: holds 9 variables, the model has 0")
    assert J is not None and J["epoch"] == FIRST
    _manifest, saved = saved_arrays(directory / "last" / "train_state.npz")
    for i, variable in enumerate(model.variables):
        assert np.asarray(variable).tobytes() == saved["model"][i].tobytes()


def test_a_different_optimizer_at_compile_is_refused_when_training_starts(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"
    _interrupted(directory)
    model = _build()
    restart(_params(directory), model, verbose=False)
    _compile(model, optimizer="sgd")
    with pytest.raises(CorruptCheckpointError, match=r"train_state\.npz: optimizer: holds 9 variables"):
        _fit(model, CandleCheckpointCallback(_params(directory), logger=None), EPOCHS, FIRST)
    assert pending_optimizer(model) is not None  # nothing assigned, still parked


def test_parked_state_is_not_forced_on_an_optimizer_that_already_trained(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"
    _interrupted(directory)
    model = _build()
    restart(_params(directory), model, verbose=False)
    _compile(model)
    model.train_on_batch(X[:16], Y[:16])  # a step outside any fit with our callback
    with pytest.raises(RestartError, match="has taken 1 step"):
        _fit(model, CandleCheckpointCallback(_params(directory), logger=None), EPOCHS, FIRST)
