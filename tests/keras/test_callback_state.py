"""The other callbacks of a ``fit`` resume where they were (`candle_restart.keras.cbstate`).

The process test is the issue's: a CANDLE-style script (``tests/programs/cbstate_bmk.py``) with
``ReduceLROnPlateau(patience=3)``, ``EarlyStopping(patience=6)`` and ``CSVLogger`` beside the
checkpoint callback, trained 4 epochs, then restarted in a new process to 10, ends as 10
uninterrupted epochs do: same stop epoch, same learning rate, bitwise-equal weights, the same
CSV bytes.  The reference run is checked to lower the learning rate and stop early within the
10 epochs, so a restart that drops the callbacks' state fails the comparison (verified: with the
state dropped it stops at no epoch and ends at twice the learning rate).  Keras APIs only: these
run again under Keras' jax and torch backends.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from candle_restart.keras import CandleCkptKeras, fit
from candle_restart.records.cbstate import read_callback_states
from candle_restart.records.ckptinfo import read_ckpt_info
from candle_restart.runtime.preempt import REQUEST, Preempted, PreemptionRequest
from tests.helpers import ROOT, runner_env
from tests.keras.candle_clr import CyclicLR
from tests.keras.requests import RequestAt

BMK = Path(__file__).resolve().parents[1] / "programs" / "cbstate_bmk.py"


def _bmk(out: Path, epochs: int) -> None:
    out.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(BMK), str(out), str(epochs)],
        env=runner_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _result(out: Path) -> dict[str, Any]:
    with np.load(out / "result.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 epochs in one process: the run every resumed one must equal."""
    out = tmp_path_factory.mktemp("uninterrupted")
    _bmk(out, 10)
    return out


@pytest.mark.backends
def test_resumed_in_a_new_process_equals_an_uninterrupted_run(uninterrupted: Path, tmp_path: Path) -> None:
    ref = _result(uninterrupted)
    history = json.loads(str(ref["history"]))
    # The callbacks must act within the 10 epochs, or dropping their state would go unnoticed.
    assert float(ref["lr"]) < 0.05, "ReduceLROnPlateau never lowered the learning rate"
    assert 4 < int(ref["stopped_epoch"]) < 9 and len(history["epoch"]) < 10, "EarlyStopping never stopped"

    _bmk(tmp_path, 4)
    _bmk(tmp_path, 10)
    got = _result(tmp_path)
    assert int(got["stopped_epoch"]) == int(ref["stopped_epoch"])
    assert got["lr"].tobytes() == ref["lr"].tobytes()
    weights = sorted(k for k in ref if k.startswith("w"))
    assert weights and all(got[k].tobytes() == ref[k].tobytes() for k in weights)
    assert (tmp_path / "training.log").read_bytes() == (uninterrupted / "training.log").read_bytes()
    assert json.loads(str(got["history"])) == history  # History carries the epochs before the restart

    log = (tmp_path / "ckpts" / "ckpt.log").read_text()
    assert (
        "restarting: restored weights (" in log
        and "callbacks (ReduceLROnPlateau, EarlyStopping, CSVLogger" in log
    )
    assert "restarting: callback state restored: ReduceLROnPlateau, EarlyStopping, CSVLogger, History;" in log
    info = read_ckpt_info(tmp_path / "ckpts" / "last" / "ckpt-info.json")
    entry = (info.files or {})["callbacks.json"]
    assert entry.size == (tmp_path / "ckpts" / "last" / "callbacks.json").stat().st_size and entry.crc32


class Counter(keras.callbacks.Callback):
    """A user's callback that speaks the protocol: values of every kind it allows."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0
        self.scale = np.float32(1.0)
        self.peak = -math.inf
        self.table = np.zeros(3)
        self.restored: dict[str, Any] | None = None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches += 1
        self.scale = self.scale * np.float32(1.1)
        self.table[self.batches % 3] += 0.5

    def get_state(self) -> dict[str, Any]:
        return {"batches": self.batches, "scale": self.scale, "peak": self.peak, "table": self.table.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.restored = state
        self.batches, self.scale, self.peak, self.table = (
            state["batches"],
            state["scale"],
            state["peak"],
            state["table"].copy(),
        )


class Tally(keras.callbacks.Callback):
    """Stateful, unknown, without the protocol: must be named, never silently skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs_seen = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs_seen += 1


def _train(directory: Path, epochs: int, restart: bool) -> tuple[Counter, CyclicLR, keras.Model]:
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(0).normal(size=(24, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    params = {
        "epochs": epochs,
        "ckpt_directory": str(directory),
        "ckpt_restart_mode": "auto" if restart else "off",
    }
    ckpt = CandleCkptKeras(params, verbose=False)
    J = ckpt.restart(model)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    counter, clr = Counter(), CyclicLR(base_lr=0.001, max_lr=0.01, step_size=4.0)
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        initial_epoch=J["epoch"] if J else 0,
        callbacks=[counter, ckpt, clr, Tally()],
        shuffle=False,
        verbose=0,
    )
    return counter, clr, model


@pytest.mark.backends
def test_protocol_cyclic_lr_and_the_uncarried_callback(tmp_path: Path) -> None:
    whole_counter, whole_clr, whole = _train(tmp_path / "whole", 3, restart=False)
    _train(tmp_path / "cut", 2, restart=False)
    counter, clr, model = _train(tmp_path / "cut", 3, restart=True)

    assert counter.restored is not None  # set_state got what get_state gave, types and bits kept
    assert counter.restored["batches"] == 6 and isinstance(counter.restored["batches"], int)
    assert counter.restored["scale"].dtype == np.float32 and counter.restored["peak"] == -math.inf
    assert counter.restored["table"].tolist() == [1.0, 1.0, 1.0]
    assert (
        counter.batches == whole_counter.batches and counter.scale.tobytes() == whole_counter.scale.tobytes()
    )
    assert counter.table.tobytes() == whole_counter.table.tobytes()
    # CyclicLR continues its cycle: the same rates batch by batch, the same rate at the end.
    assert clr.clr_iterations == whole_clr.clr_iterations == 9
    assert (
        clr.history["lr"] == whole_clr.history["lr"]
        and clr.history["iterations"] == whole_clr.history["iterations"]
    )
    end_lr = keras.ops.convert_to_numpy(model.optimizer.learning_rate)
    assert end_lr.tobytes() == keras.ops.convert_to_numpy(whole.optimizer.learning_rate).tobytes()

    log = (tmp_path / "cut" / "ckpt.log").read_text()
    line = "not checkpointed: Tally: its attributes epochs_seen change during training"
    assert log.count(line) == 1  # named once, at the first commit after it changed
    assert (
        "callback state restored: Counter, CyclicLR, History; " in log and "; not checkpointed: Tally" in log
    )
    record = read_callback_states(tmp_path / "cut" / "epochs" / "002" / "callbacks.json")
    assert [u.name for u in record.not_checkpointed] == ["Tally"]
    assert {e.name: e.replay for e in record.callbacks} == {
        "Counter": False,
        "CyclicLR": True,
        "History": True,
    }


def test_the_fit_not_found_is_said_once(tmp_path: Path) -> None:
    ckpt = CandleCkptKeras({"epochs": 1, "ckpt_directory": str(tmp_path)}, verbose=False)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    ckpt.set_model(model)
    ckpt.on_train_begin()  # not called by a CallbackList: the siblings cannot be found
    try:
        assert ckpt.callback_state.capture() is None
    finally:
        ckpt.on_train_end()
    log = (tmp_path / "ckpt.log").read_text()
    assert log.count("callback state: the callbacks of this fit were not found") == 1


def _fit_mid(
    directory: Path, callbacks: list[keras.callbacks.Callback]
) -> tuple[keras.Model, CyclicLR, Counter]:
    keras.utils.set_random_seed(3)
    x = np.random.default_rng(1).normal(size=(96, 4)).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dropout(0.2), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    clr, counter = CyclicLR(base_lr=0.001, max_lr=0.01, step_size=5.0), Counter()
    ckpt = CandleCkptKeras(
        {"epochs": 2, "ckpt_directory": str(directory), "ckpt_save_best": False}, logger=None
    )
    try:
        fit(
            model,
            x,
            x.sum(axis=1, keepdims=True),
            ckpt=ckpt,
            epochs=2,
            batch_size=16,
            shuffle=False,
            callbacks=[*callbacks, clr, counter],
            verbose=0,
        )
    finally:
        REQUEST.clear()
    return model, clr, counter


# `preemption`: the stop raises Preempted out of fit, which calls no callback after it, so the
# handlers stay armed (as they must until the process exits: a late signal must not kill it).
@pytest.mark.backends
def test_a_mid_epoch_resume_replays_the_batch_the_callbacks_after_ckpt_had_not_seen(
    tmp_path: Path, preemption: PreemptionRequest
) -> None:
    whole, whole_clr, whole_counter = _fit_mid(tmp_path / "whole", [])
    with pytest.raises(Preempted):
        _fit_mid(tmp_path / "cut", [RequestAt(1, 3)])  # committed inside epoch 2, after its batch 4
    model, clr, counter = _fit_mid(tmp_path / "cut", [])
    assert clr.history == whole_clr.history and clr.clr_iterations == whole_clr.clr_iterations == 12
    assert (
        counter.batches == whole_counter.batches == 12
        and counter.table.tobytes() == whole_counter.table.tobytes()
    )
    assert all(
        a.tobytes() == b.tobytes() for a, b in zip(model.get_weights(), whole.get_weights(), strict=True)
    )


@pytest.mark.backends
def test_backup_and_restore_does_not_override_the_restored_checkpoint(tmp_path: Path) -> None:
    x = np.random.default_rng(2).normal(size=(16, 2)).astype("float32")

    begun: list[int] = []
    trace = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: begun.append(epoch))

    def run(epochs: int) -> keras.callbacks.History:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        ckpt = CandleCkptKeras({"epochs": epochs, "ckpt_directory": str(tmp_path / "ckpts")}, verbose=False)
        J = ckpt.restart(model)
        model.compile(optimizer="sgd", loss="mse")
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
        return model.fit(
            x,
            x,
            epochs=epochs,
            initial_epoch=J["epoch"] if J else 0,
            callbacks=[ckpt, backup, trace],
            verbose=0,
        )

    run(2)
    # An older backup (as after a crash between the two saves): loaded, it would restart at epoch 1.
    (tmp_path / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 1, "batch": 0}))
    begun.clear()
    history = run(3)
    assert begun == [2] and history.epoch == [0, 1, 2]  # only epoch 3 trained, after the checkpoint's 2
    log = (tmp_path / "ckpts" / "ckpt.log").read_text()
    assert "BackupAndRestore: its backup is not loaded: training resumes from this checkpoint" in log


SCORES = {"low": [3.0, 1.0, 2.0, 4.0], "high": [5.0, 1.0, 2.0, 3.0]}  # best at epoch 2 (min), at 1 (max)


def _es_run(directory: Path, epochs: int, restart: bool) -> list[Any]:
    keras.utils.set_random_seed(4)
    x = np.random.default_rng(4).normal(size=(32, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    params = {
        "epochs": epochs,
        "ckpt_directory": str(directory),
        "ckpt_restart_mode": "auto" if restart else "off",
    }
    ckpt = CandleCkptKeras(params, verbose=False)
    J = ckpt.restart(model)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    scores = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update({k: v[epoch] for k, v in SCORES.items()})
    )
    before = keras.callbacks.EarlyStopping("low", mode="min", patience=9, restore_best_weights=True)
    after = keras.callbacks.EarlyStopping("high", mode="max", patience=9, restore_best_weights=True)
    best = keras.callbacks.ModelCheckpoint(
        str(directory) + "-best.keras", "low", mode="min", save_best_only=True
    )
    model.fit(
        x,
        x.sum(axis=1),
        batch_size=8,
        epochs=epochs,
        initial_epoch=J["epoch"] if J else 0,
        callbacks=[scores, before, ckpt, after, best],
        shuffle=False,
        verbose=0,
    )
    return [before, after, best]


@pytest.mark.backends
def test_early_stopping_best_weights_by_reference_or_as_arrays_and_model_checkpoint_best(
    tmp_path: Path,
) -> None:
    whole = _es_run(tmp_path / "whole", 4, restart=False)
    _es_run(tmp_path / "cut", 2, restart=True)
    record = read_callback_states(tmp_path / "cut" / "epochs" / "002" / "callbacks.json")
    saved = {e.slot: e.state["best_weights"] for e in record.callbacks if e.name == "EarlyStopping"}
    # Before ckpt in the list it has seen epoch 2, its best: the checkpoint's own weights, by reference.
    # After it, its best is epoch 1's: arrays of callbacks.npz.
    assert saved[1] == "the checkpoint's weights" and isinstance(saved[3], list) and record.arrays_file
    info = read_ckpt_info(tmp_path / "cut" / "epochs" / "002" / "ckpt-info.json")
    assert "callbacks.npz" in (info.files or {})
    resumed = _es_run(tmp_path / "cut", 4, restart=True)
    assert [r.best_epoch for r in whole[:2]] == [1, 0]  # neither improves after the checkpoint
    assert resumed[2].best == whole[2].best == 1.0  # ModelCheckpoint's best: not 2.0, the first seen after
    for got, ref in zip(resumed[:2], whole[:2], strict=True):
        assert got.best_epoch == ref.best_epoch and got.wait == ref.wait
        assert [a.tobytes() for a in got.best_weights] == [a.tobytes() for a in ref.best_weights]
