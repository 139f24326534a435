"""The core writes ``events.jsonl`` as it trains, commits and restarts (real files, real commits)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from candle_restart.records.epochs import EVENTS_FILE, read_events
from candle_restart.runtime.preempt import PreemptionRequest
from tests.helpers import BytesCkpt, BytesModel

MakeCkpt = Callable[..., BytesCkpt]


def _epochs(ckpt: BytesCkpt, values: list[float], start: int = 0) -> None:
    for i, value in enumerate(values, start):
        ckpt.epoch_logs = {"loss": value * 2, "val_loss": value}
        ckpt.ckpt_epoch(i, "-", value)


def test_epoch_commit_and_restart_events_of_a_run_and_its_restart(
    make_ckpt: MakeCkpt, tmp_path: Path
) -> None:
    ckpt = make_ckpt(epochs=4, ckpt_save_interval=2, ckpt_skip_epochs=2)
    assert ckpt.restart(BytesModel()) is None
    _epochs(ckpt, [0.5, 0.4, 0.45])
    ckpt.save_midepoch(3, 7)
    again = make_ckpt(epochs=4, ckpt_save_interval=2, ckpt_skip_epochs=2)
    again.restart(BytesModel())
    events = read_events(tmp_path / "ckpts")
    assert [(e.kind, e.epoch) for e in events] == [
        ("restart", None),  # a fresh start
        ("epoch", 1),
        ("disabled", 1),
        ("epoch", 2),
        ("commit", 2),
        ("epoch", 3),
        ("commit", 4),
        ("restart", 3),
    ]
    first = events[1]
    assert (first.metric, first.value, first.mode) == ("val_loss", 0.5, "min")
    assert first.metrics == {"loss": 1.0, "val_loss": 0.5}
    assert events[2].until == 2
    best, midepoch = events[4], events[6]
    assert (best.path, best.position, best.reason) == ("epochs/002", None, "best")
    assert (midepoch.path, midepoch.position, midepoch.reason) == (
        "epochs/004",
        {"epoch": 4, "batch": 7},
        "midepoch",
    )
    size = sum(p.stat().st_size for p in (tmp_path / "ckpts" / "epochs" / "004").iterdir())
    assert midepoch.bytes == size
    assert midepoch.write_seconds is not None and midepoch.blocked_seconds is not None
    assert (
        midepoch.blocked_seconds >= midepoch.write_seconds
    )  # written in the training thread: all of it blocked
    restart = events[7]
    assert (restart.path, restart.position, restart.via) == ("epochs/004", {"epoch": 4, "batch": 7}, "last")


def test_commit_reasons_final_preempt_and_interval(
    make_ckpt: MakeCkpt, tmp_path: Path, preemption: PreemptionRequest
) -> None:
    ckpt = make_ckpt(epochs=4, ckpt_save_interval=2, ckpt_save_best=False)
    _epochs(ckpt, [0.5, 0.4])
    preemption.halt("a test's walltime")
    ckpt.save_epoch(3)  # what the callback does when a stop is requested at an epoch end
    ckpt.save_midepoch(3, 2)
    preemption.clear()
    _epochs(ckpt, [0.3], start=3)
    commits = [(e.epoch, e.reason) for e in read_events(tmp_path / "ckpts") if e.kind == "commit"]
    assert commits == [(2, "epoch"), (3, "preempt"), (4, "preempt"), (4, "final")]
    epochs = [e for e in read_events(tmp_path / "ckpts") if e.kind == "epoch"]
    assert all(e.metric is None and e.value is None and e.mode is None for e in epochs)  # no best tracked


def test_a_checkpoint_set_aside_is_an_event(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(epochs=3)
    _epochs(ckpt, [0.5, 0.4])
    (tmp_path / "ckpts" / "epochs" / "002" / "model.bin").write_bytes(b"a different size")
    make_ckpt(epochs=3).restart(BytesModel())
    events = read_events(tmp_path / "ckpts")
    [aside] = [e for e in events if e.kind == "set_aside"]
    assert aside.path == "epochs/002" and aside.aside is not None
    assert (tmp_path / "ckpts" / aside.aside).is_dir()
    assert aside.problem is not None and "recorded" in aside.problem and "model.bin" in aside.problem
    assert (events[-1].kind, events[-1].epoch, events[-1].via) == ("restart", 1, "fallback")


def test_events_that_cannot_be_written_never_stop_training(
    make_ckpt: MakeCkpt, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test-events")
    ckpt = make_ckpt(logger=logger, epochs=3)
    (tmp_path / "ckpts").mkdir(exist_ok=True)
    (tmp_path / "ckpts" / EVENTS_FILE).mkdir()  # appending to it fails (EISDIR) every time
    with caplog.at_level(logging.WARNING, logger="test-events"):
        _epochs(ckpt, [0.5, 0.4, 0.3])
    assert sorted(os.listdir(tmp_path / "ckpts" / "epochs")) == ["001", "002", "003"]
    warnings = [r.getMessage() for r in caplog.records if "events.jsonl" in r.getMessage()]
    assert warnings == ["events.jsonl: cannot record an event (Is a directory); training goes on, events may be missing"]


def test_a_metric_value_that_is_no_number_is_dropped_from_the_event(
    make_ckpt: MakeCkpt, tmp_path: Path
) -> None:
    class Tensorish:
        def __float__(self) -> float:
            return 0.25

    ckpt = make_ckpt(epochs=1)
    logs: dict[str, Any] = {"loss": Tensorish(), "name": "not a number", "val_loss": 0.5}
    ckpt.epoch_logs = logs
    ckpt.ckpt_epoch(0, "-", 0.5)
    [epoch] = [e for e in read_events(tmp_path / "ckpts") if e.kind == "epoch"]
    assert epoch.metrics == {"loss": 0.25, "val_loss": 0.5}
