"""What a checkpoint inside an epoch needs on every Keras backend: the live training state, taken in
the training thread and written in the background, and the global generators training draws from.

Backend-neutral (no TensorFlow object): `make test-backends` runs it under JAX and torch too.
Without the JAX state sync (`candle_restart.keras.internals.sync_training_state`) the first test
fails under JAX: the snapshot reads the variables Keras' JAX trainer purged at the epoch's start.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any, cast

import keras
import numpy as np
import pytest

from candle_restart.ckpt import CkptLayout, CorruptCheckpointError
from candle_restart.ckpt.sink import Snapshot
from candle_restart.keras import CandleCkptKeras, rngs
from candle_restart.keras.npz import read_npz, write_npz
from candle_restart.keras.state import load_state, save_state, saved_arrays
from candle_restart.records.ckptinfo import FileEntry
from candle_restart.records.jsontypes import JsonObject
from candle_restart.records.trainstate import TrainManifest
from candle_restart.runtime.preempt import REQUEST, Preempted
from tests.keras.requests import RequestAt
from tests.keras.test_fit_inputs import BATCH, X, Y, _model

pytestmark = pytest.mark.backends


class _Recording(CandleCkptKeras):
    """Records, for each checkpoint written, whether the training (main) thread wrote it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.written_in_main: list[bool] = []

    def write_snapshot(self, snapshot: Snapshot, dir_work: Path) -> dict[str, FileEntry]:
        self.written_in_main.append(threading.current_thread() is threading.main_thread())
        return super().write_snapshot(snapshot, dir_work)


def test_a_checkpoint_inside_an_epoch_holds_the_live_state_and_is_written_in_the_background(
    tmp_path: Path,
) -> None:
    model = _model()
    ckpt = _Recording(
        {"epochs": 2, "ckpt_directory": str(tmp_path / "c"), "ckpt_save_best": False}, logger=None
    )
    try:
        with pytest.raises(Preempted):
            model.fit(
                X, Y, epochs=2, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[RequestAt(1, 2), ckpt]
            )
    finally:  # the handlers and the request are this process's: leave none to the next test
        ckpt._disarm()
        REQUEST.clear()
    live = [np.array(v) for v in [*model.variables, *model.optimizer.variables]]  # put back as fit ended
    layout = CkptLayout.at(tmp_path / "c")
    manifest, saved = saved_arrays(layout.last / "train_state.npz")
    assert json.loads((layout.last / "ckpt-info.json").read_text())["position"] == {"epoch": 2, "batch": 3}
    assert int(np.asarray(saved["optimizer"][0])) == 6 + 3  # epoch 1's six batches and three of epoch 2
    assert [a.tobytes() for a in [*saved["model"], *saved["optimizer"]]] == [a.tobytes() for a in live]
    assert ckpt.written_in_main == [False, False]  # epoch 1's and the mid-epoch one: the commit thread
    assert {e.path for e in manifest.entries("rng")} >= {"python.random", "numpy.random"}


def test_the_global_generators_come_back_to_their_saved_state() -> None:
    def draws() -> list[float]:
        values = [random.random(), float(np.random.random())]
        if keras.backend.backend() == "torch":
            import torch

            values.append(float(torch.rand(1)[0]))
            values.append(
                float(torch.nn.functional.dropout(torch.ones(64), 0.5).sum())
            )  # an unseeded Dropout
        return values

    saved = rngs.capture()
    first = draws()
    assert draws() != first
    restored = rngs.restore(saved)
    assert draws() == first
    assert ("torch.cpu" in restored) == (keras.backend.backend() == "torch")


def test_a_forged_generator_state_is_refused_naming_the_file(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "train_state.npz"
    save_state(model, path)
    arrays = read_npz(path)
    manifest = TrainManifest.from_text(str(arrays["__manifest__"])).to_json()
    rng = cast("list[JsonObject]", manifest["rng"])  # TrainManifest checked its shape
    index = [e["path"] for e in rng].index("numpy.random")
    arrays[f"rng/{index}"] = arrays[f"rng/{index}"][:-1]  # one byte short
    rng[index]["shape"] = [arrays[f"rng/{index}"].size]
    arrays["__manifest__"] = np.array(json.dumps(manifest))
    with open(path, "wb") as f:
        write_npz(f, arrays)
    with pytest.raises(
        CorruptCheckpointError, match=r"train_state\.npz: rng: numpy\.random: its state must be"
    ):
        load_state(_model(), path)


def test_a_plain_fit_that_shuffles_resumes_exactly_at_an_epoch_end(tmp_path: Path) -> None:
    """``model.fit(shuffle=True, initial_epoch=...)``: Keras 3.15 draws each epoch's order from NumPy's
    global generator (JAX) or torch's (torch), which the checkpoint carries."""
    if keras.backend.backend() == "tensorflow":
        pytest.skip("TensorFlow's fit(shuffle=True) shuffles by op seeds that no saved state restores")

    def train(ckpt_dir: str, epochs: int) -> Any:
        model = _model()
        ckpt = CandleCkptKeras(
            {"epochs": 4, "ckpt_directory": ckpt_dir, "ckpt_save_best": False}, logger=None
        )
        ckpt.set_model(model)
        J = ckpt.restart(model)
        model.fit(
            X,
            Y,
            epochs=epochs,
            initial_epoch=J["epoch"] if J else 0,
            batch_size=BATCH,
            shuffle=True,
            verbose=0,
            callbacks=[ckpt],
        )
        return model

    whole = train(str(tmp_path / "a"), 4)
    train(str(tmp_path / "b"), 2)
    resumed = train(str(tmp_path / "b"), 4)
    assert [np.array(v).tobytes() for v in whole.variables] == [
        np.array(v).tobytes() for v in resumed.variables
    ]
