"""Asynchronous commits keep every guarantee of the synchronous ones.

The model file written from a snapshot is the file ``model.save`` writes; the
snapshot is isolated from training that goes on; one commit at a time; a
write error in the commit thread ends ``fit``; kill -9 during a background
commit leaves no partial checkpoint; resume stays bitwise exact.
"""

from __future__ import annotations

import io
import logging
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from candle_restart.ckpt import CkptLayout, CommitError, find_restart
from candle_restart.keras import CandleCkptKeras
from candle_restart.keras.state import load_state, saved_arrays
from candle_restart.records.ckptinfo import FileEntry
from tests.helpers import ROOT, run_example, runner_env
from tests.keras.test_fit_inputs import BATCH, X, Y, _model


def _trained(weights_only: bool = False) -> Any:
    model = _model()
    model.fit(X, Y, epochs=1, batch_size=BATCH, verbose=0)
    return model


def _h5_tree(data: bytes) -> dict[str, Any]:
    """Every group and dataset of an HDF5 image: attributes, and values for datasets."""
    tree: dict[str, Any] = {}
    with h5py.File(io.BytesIO(data), "r") as f:

        def visit(name: str, obj: Any) -> None:
            attrs = {k: str(v) for k, v in obj.attrs.items()}
            tree[name] = (attrs, np.asarray(obj).tobytes() if isinstance(obj, h5py.Dataset) else None)

        f.visititems(visit)
    return tree


@pytest.mark.parametrize("weights_only", [False, True])
def test_snapshot_writes_the_file_keras_writes(tmp_path: Path, weights_only: bool) -> None:
    model = _trained()
    ckpt = CandleCkptKeras(
        {"epochs": 5, "ckpt_directory": str(tmp_path / "c"), "ckpt_save_weights_only": weights_only},
        logger=None,
    )
    ckpt.set_model(model)
    ckpt.save_epoch(1)
    ckpt.wait_for_commit()
    ours = tmp_path / "c" / "last" / ckpt.model_file_name
    if weights_only:
        model.save_weights(tmp_path / "plain.weights.h5")
        assert _h5_tree(ours.read_bytes()) == _h5_tree((tmp_path / "plain.weights.h5").read_bytes())
        other = _model()
        other.load_weights(ours)
    else:
        model.save(tmp_path / "plain.keras")
        with zipfile.ZipFile(ours) as a, zipfile.ZipFile(tmp_path / "plain.keras") as b:
            assert a.namelist() == b.namelist()
            assert a.read("config.json") == b.read("config.json")
            assert _h5_tree(a.read("model.weights.h5")) == _h5_tree(b.read("model.weights.h5"))
        other = keras.models.load_model(ours)
        for x, y in zip(model.optimizer.variables, other.optimizer.variables, strict=True):
            assert np.array_equal(np.asarray(x), np.asarray(y))
    assert np.array_equal(model.predict(X, verbose=0), other.predict(X, verbose=0))


def test_a_replaced_second_optimizer_is_captured_afresh(tmp_path: Path) -> None:
    """The walk's cached result must not outlive a saveable the cache key cannot see."""
    model = _trained()
    model.d_optimizer = keras.optimizers.Adam()
    model.d_optimizer.build(model.trainable_variables)
    ckpt = CandleCkptKeras(
        {"epochs": 5, "ckpt_directory": str(tmp_path / "c"), "ckpt_save_weights_only": True}, logger=None
    )
    ckpt.set_model(model)
    ckpt.save_epoch(1)
    model.d_optimizer = keras.optimizers.SGD(momentum=0.9)
    model.d_optimizer.build(model.trainable_variables)
    ckpt.save_epoch(2)
    model.save_weights(tmp_path / "plain.weights.h5")
    ours = (tmp_path / "c" / "last" / "model.weights.h5").read_bytes()
    assert _h5_tree(ours) == _h5_tree((tmp_path / "plain.weights.h5").read_bytes())


def test_a_model_with_assets_round_trips(tmp_path: Path) -> None:
    words = keras.Input(shape=(1,), dtype="string")
    lookup = keras.layers.StringLookup()
    lookup.adapt(["red", "green", "blue", "blue"])  # an adapted vocabulary is saved as an asset file
    model = keras.Model(words, keras.layers.Embedding(5, 2)(lookup(words)))
    ckpt = CandleCkptKeras({"epochs": 5, "ckpt_directory": str(tmp_path / "c")}, logger=None)
    ckpt.set_model(model)
    ckpt.on_train_begin()
    ckpt.save_epoch(1)
    ckpt.save_epoch(2)  # a walk that met assets is never reused: the second file has them too
    ckpt.on_train_end()
    assert (tmp_path / "c" / "last").resolve().name == "002"
    with zipfile.ZipFile(tmp_path / "c" / "last" / "model.keras") as archive:
        assert any(name.startswith("assets/") and name.endswith(".txt") for name in archive.namelist())
    loaded = keras.models.load_model(tmp_path / "c" / "last" / "model.keras")
    inputs = tf.constant([["blue"], ["red"], ["mauve"]])
    assert np.array_equal(np.asarray(model(inputs)), np.asarray(loaded(inputs)))
    assert not CkptLayout.at(tmp_path / "c").work_dirs()


class _Gated(CandleCkptKeras):
    """The commit thread waits for ``gate`` before writing anything."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.snapshots = 0

    def snapshot_model(self, epoch: int) -> Any:
        self.snapshots += 1
        return super().snapshot_model(epoch)

    def write_snapshot(self, snapshot: Any, dir_work: Path) -> dict[str, FileEntry]:
        self.gate.wait()
        return super().write_snapshot(snapshot, dir_work)


def test_the_checkpoint_holds_the_state_of_its_instant(tmp_path: Path) -> None:
    model = _trained()
    ckpt = _Gated({"epochs": 5, "ckpt_directory": str(tmp_path / "c")}, logger=None)
    ckpt.set_model(model)
    ckpt.on_train_begin()
    before = [np.array(v) for v in [*model.variables, *model.optimizer.variables]]
    weights = model.get_weights()
    ckpt.save_epoch(1)  # returns with the snapshot taken; the writer waits at the gate
    assert not (tmp_path / "c" / "last").exists()
    for variable in [*model.variables, *model.optimizer.variables]:
        variable.assign(np.zeros(variable.shape, variable.dtype) + 7)  # training goes on
    ckpt.gate.set()
    ckpt.on_train_end()
    restored = _model()
    restored.optimizer.build(restored.trainable_variables)
    load_state(restored, tmp_path / "c" / "last" / "train_state.npz")
    after = [np.array(v) for v in [*restored.variables, *restored.optimizer.variables]]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, after, strict=True))
    loaded = keras.models.load_model(tmp_path / "c" / "last" / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(weights, loaded.get_weights(), strict=True))


def test_one_commit_in_flight_and_the_wait_is_logged(tmp_path: Path) -> None:
    waiting = threading.Event()

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for the commit of epoch 1" in record.getMessage():
                waiting.set()

    logger = logging.getLogger(f"test-async-{id(tmp_path)}")
    logger.addHandler(Spy())
    logger.setLevel(logging.INFO)
    ckpt = _Gated({"epochs": 5, "ckpt_directory": str(tmp_path / "c")}, logger=logger)
    model = _trained()
    ckpt.set_model(model)
    ckpt.on_train_begin()
    first = np.array(model.variables[0])
    ckpt.save_epoch(1)
    model.variables[0].assign(first + 1)  # the values of epoch 2, copied into the same host buffers
    second = threading.Thread(target=ckpt.save_epoch, args=(2,))
    second.start()
    assert waiting.wait(timeout=120), "the second checkpoint did not wait for the first commit"
    assert ckpt.snapshots == 1  # epoch 2 is not even captured while epoch 1 is in flight
    ckpt.gate.set()
    second.join(timeout=120)
    ckpt.on_train_end()
    layout = CkptLayout.at(tmp_path / "c")
    assert ckpt.snapshots == 2 and layout.list_epochs() == [1, 2] and layout.linked_epoch(layout.last) == 2
    for epoch, expected in ((1, first), (2, first + 1)):
        _manifest, state = saved_arrays(layout.epoch_dir(epoch) / "train_state.npz")
        assert state["model"][0].tobytes() == expected.tobytes()


class _Failing(_Gated):
    """Every write fails, as on a full disk, once the gate opens."""

    def write_snapshot(self, snapshot: Any, dir_work: Path) -> dict[str, FileEntry]:
        self.gate.wait()
        raise OSError(28, "No space left on device")


def test_a_failed_background_commit_is_raised_at_the_next_batch_end(tmp_path: Path) -> None:
    ckpt = _Failing({"epochs": 5, "ckpt_directory": str(tmp_path / "c")}, logger=None)
    ckpt.set_model(_trained())
    ckpt.on_train_begin()
    ckpt.save_epoch(1)  # returns: the failure has not happened yet
    ckpt.gate.set()
    assert ckpt.committer.join(timeout=120)
    with pytest.raises(CommitError, match="No space left on device"):
        ckpt.on_train_batch_end(0)
    ckpt.on_train_batch_end(1)  # raised once, not again
    ckpt.on_train_end()
    assert not CkptLayout.at(tmp_path / "c").last.exists()


def test_outside_a_training_commits_are_synchronous(tmp_path: Path) -> None:
    """A script calling ckpt_epoch from its own loop has no hook to receive a background error."""
    ckpt = _Failing({"epochs": 5, "ckpt_directory": str(tmp_path / "c")}, logger=None)
    ckpt.set_model(_trained())
    ckpt.gate.set()
    with pytest.raises(CommitError, match="No space left on device"):
        ckpt.ckpt_epoch(0, "-", 1.0)
    fine = CandleCkptKeras({"epochs": 5, "ckpt_directory": str(tmp_path / "d")}, logger=None)
    fine.set_model(_trained())
    fine.ckpt_epoch(0, "-", 1.0)
    assert CkptLayout.at(tmp_path / "d").linked_epoch(tmp_path / "d" / "last") == 1  # committed on return


def test_a_write_error_in_the_commit_thread_ends_fit(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.programs.write_limited", str(tmp_path / "c")],
        cwd=ROOT,
        env=runner_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    last_line = proc.stderr.strip().splitlines()[-1]
    assert "CommitError" in last_line and "File too large" in last_line
    assert "in raise_failure" in proc.stderr  # raised again in the training thread, by fit's callback
    layout = CkptLayout.at(tmp_path / "c")
    assert layout.list_epochs() == [] and not layout.last.exists()


def test_kill_minus_9_during_a_background_commit(tmp_path: Path) -> None:
    args = ["--epochs", "4", "--output_dir", "run", "--ckpt_checksum", "True"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.programs.hold_commit", *args],
        cwd=tmp_path,
        env=runner_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "HOLDING" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    layout = CkptLayout.at(tmp_path / "run" / "ckpts")
    (work,) = layout.work_dirs()  # the writer's own work directory, killed in the middle of epoch 2's commit
    assert work.name.startswith("work-") and (work / "train_state.npz").is_file()
    assert layout.list_epochs() == [1] and layout.linked_epoch(layout.last) == 1
    found = find_restart(layout, True, lambda _m: None)
    assert found is not None and found.epoch == 1 and found.via == "last"
    resumed = run_example(args, tmp_path)
    assert "restarting from epoch: 1" in resumed.stdout
    assert layout.linked_epoch(layout.last) == 4 and not layout.work_dirs()
