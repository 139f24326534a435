"""What a CANDLE benchmark sees: the older generation's ``./save`` layout, restart finding
checkpoints written either way, one initialisation block a run, commit-thread lines kept out
of progress lines, and ``checkpoints kept/list`` as CANDLE reported them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from candle_restart.keras import CandleCheckpointCallback, CandleCkptKeras, restart
from candle_restart.records.ckptinfo import FileEntry

X = np.random.default_rng(4).normal(size=(64, 4)).astype("float32")
Y = X.sum(axis=1, keepdims=True).astype("float32")


def _model(compiled: bool = True) -> Any:
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    if compiled:
        model.compile(optimizer="adam", loss="mse")
    return model


def _fit(model: Any, callbacks: list[Any], epochs: int, initial_epoch: int = 0) -> None:
    model.fit(
        X,
        Y,
        validation_data=(X, Y),
        batch_size=16,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        callbacks=callbacks,
    )


def test_older_generation_writes_ckpt_directory_slash_ckpts_as_candle_did(tmp_path: Path) -> None:
    params = {"epochs": 2, "ckpt_directory": str(tmp_path / "save")}  # what CANDLE's older parser sets
    _fit(_model(), [CandleCheckpointCallback(params, logger=None)], 2)
    ckpts = tmp_path / "save" / "ckpts"
    assert (ckpts / "last" / "ckpt-info.json").is_file() and (ckpts / "best").is_symlink()
    assert sorted(p.name for p in (ckpts / "epochs").iterdir()) == ["001", "002"]
    assert not (tmp_path / "save" / "last").exists() and not (tmp_path / "save" / "epochs").exists()
    J = restart(params, _model(compiled=False), verbose=False)
    assert J is not None and J["epoch"] == 2


@pytest.mark.parametrize("writer", ["older", "newer"])
def test_restart_finds_checkpoints_written_either_way(tmp_path: Path, writer: str) -> None:
    params = {"epochs": 2, "ckpt_directory": str(tmp_path / "save")}
    ckpt_class = CandleCheckpointCallback if writer == "older" else CandleCkptKeras
    trained = _model()
    _fit(trained, [ckpt_class(params, logger=None)], 2)
    written = tmp_path / "save" / ("ckpts" if writer == "older" else "")
    assert (written / "last").is_symlink()

    reader = CandleCkptKeras if writer == "older" else CandleCheckpointCallback  # the other generation
    fresh = _model()
    J = reader({**params, "ckpt_restart_mode": "required"}, logger=None).restart(fresh)
    assert J is not None and J["epoch"] == 2
    for a, b in zip(trained.variables, fresh.variables, strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_one_initialisation_block_per_run_with_the_older_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = {"epochs": 2, "ckpt_directory": str(tmp_path / "save")}
    _fit(_model(), [CandleCheckpointCallback(params, verbose=False)], 1)
    capsys.readouterr()
    model = _model(compiled=False)
    J = restart(params, model, verbose=False)
    model.compile(optimizer="adam", loss="mse")
    assert J is not None
    _fit(model, [CandleCheckpointCallback(params, verbose=False)], 2, J["epoch"])
    out = capsys.readouterr().out
    assert out.count("Callback initialized.") == 1 and out.count("ckpt_directory: ") == 1
    assert out.index("restarting from epoch: 1") < out.index("Callback initialized.")


def test_checkpoints_kept_and_list_count_this_run_only(tmp_path: Path) -> None:
    params = {"epochs": 2, "ckpt_directory": str(tmp_path / "ckpts"), "ckpt_keep_mode": "all"}
    _fit(_model(), [CandleCkptKeras(params, logger=None)], 2)
    params["epochs"] = 4
    model = _model()
    ckpt = CandleCkptKeras(params, verbose=False)
    J = ckpt.restart(model)
    assert J is not None
    _fit(model, [ckpt], 4, J["epoch"])
    log = (tmp_path / "ckpts" / "ckpt.log").read_text().splitlines()
    assert log[-2].endswith("checkpoints kept: 2") and log[-1].endswith("checkpoints list: [3, 4]")
    assert sorted(p.name for p in (tmp_path / "ckpts" / "epochs").iterdir()) == ["001", "002", "003", "004"]


class _Gated(CandleCkptKeras):
    """Its background commits wait for ``gate``, so the test decides when they log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()

    def write_snapshot(self, snapshot: Any, dir_work: Path) -> dict[str, FileEntry]:
        self.gate.wait()
        return super().write_snapshot(snapshot, dir_work)


def test_commit_thread_lines_reach_stdout_only_between_epochs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = _Gated({"epochs": 3, "ckpt_directory": str(tmp_path / "c"), "ckpt_checksum": True}, verbose=True)
    during: dict[str, str] = {}

    class Probe(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if (self.epoch, batch) == (1, 0):  # a progress line of epoch 2 would be open here
                ckpt.gate.set()
                assert ckpt.committer.join(timeout=None)  # epoch 1's commit has logged all it will
                during["stdout"] = capsys.readouterr().out
                during["file"] = (tmp_path / "c" / "ckpt.log").read_text()

    _fit(_model(), [ckpt, Probe()], 3)
    after = capsys.readouterr().out
    # The commit of epoch 1 logged while epoch 2 trained: in the file at once, on stdout not yet ...
    assert "checksummed:" in during["file"] and "linking:" in during["file"]
    assert "checksummed:" not in during["stdout"] and "linking:" not in during["stdout"]
    # ... and on stdout once epoch 3 began, before its own lines, each on a line of its own.
    assert "checksummed:" in after and "linking:" in after
    for word in ("checksummed:", "linking:"):
        assert all(line.startswith(word) for line in after.splitlines() if word in line)
