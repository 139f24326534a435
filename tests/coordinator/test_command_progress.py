"""The no-progress breaker judges a ``command`` by what it can show: a real non-Keras program that
keeps its own state file in its checkpoint directory, preempted again and again by real signals,
is resumed every time and completes; one that shows nothing is never given up for it."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from candle_restart.coordinator import Policy, resume
from candle_restart.coordinator.causes import UNKNOWN, Ledger
from candle_restart.coordinator.local import LocalBackend
from candle_restart.records.jsontypes import JsonObject
from candle_restart.task import create_task
from candle_restart.task.progress import progress_key
from tests.helpers import journal, state
from tests.programs.trainers import TRAINER

PREEMPTIONS = 5  # more than the breaker's 3


def wait_until(what: str, check: Callable[[], bool], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _epochs_of(marks: Path, attempt: int) -> int:
    lines = marks.read_text().splitlines() if marks.exists() else []
    return sum(line.startswith(f"epoch {attempt} ") for line in lines)


def _has_an_epoch(marks: Path, attempt: int) -> bool:
    return _epochs_of(marks, attempt) >= 1


def test_a_command_keeping_its_own_checkpoint_files_is_resumed_past_the_breaker(tmp_path: Path) -> None:
    (tmp_path / "trainer.py").write_text(TRAINER)
    marks = tmp_path / "marks"
    params: JsonObject = {"epochs": 3 * PREEMPTIONS + 2, "epoch_seconds": 0.2, "marks": str(marks), "lock": str(tmp_path / "lock")}
    task = create_task(tmp_path / "run", params, command=[sys.executable, str(tmp_path / "trainer.py")])
    backend, policy = LocalBackend(), Policy()
    assert policy.no_progress_attempts < PREEMPTIONS
    for attempt in range(1, PREEMPTIONS + 1):
        outcomes = resume(tmp_path / "run", backend, policy)
        assert [o.decision.action for o in outcomes] == ["submit"], [o.decision for o in outcomes]
        wait_until(f"an epoch of attempt {attempt}", partial(_has_an_epoch, marks, attempt))
        os.kill(state(task.path)["pid"], signal.SIGUSR1)  # the runner forwards it; the trainer stops
        backend.wait_all()
        assert state(task.path)["status"] == "preempted", state(task.path)
    for _ in range(3):  # the last attempt runs to the end
        outcomes = resume(tmp_path / "run", backend, policy)
        backend.wait_all()
        if state(task.path)["status"] == "completed":
            break
    assert state(task.path)["status"] == "completed", [o.decision for o in outcomes]
    exits = [e for e in journal(task.path) if e.kind == "exit"]
    assert [e.status for e in exits] == ["preempted"] * PREEMPTIONS + ["completed"]
    keys = [e.ckpt for e in exits[:-1]]
    assert all(k is not None and k.startswith("files:") for k in keys) and len(set(keys)) == PREEMPTIONS
    assert (task.ckpts / "trainer-state.json").read_text() == f'{{"epoch": {3 * PREEMPTIONS + 2}}}'


def test_a_command_whose_checkpoint_directory_shows_nothing_is_unknown_never_none(tmp_path: Path) -> None:
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    (ckpts / "ckpt.log").write_text("the callback's own log does not count\n")
    assert progress_key(ckpts, None, command=True) == UNKNOWN
    assert progress_key(ckpts, None, command=False) is None  # an entry: nothing committed yet
    ledger = Ledger()
    for _ in range(5):
        ledger.end("preempted", UNKNOWN)
    assert ledger.stalled == 0
    (ckpts / "model.pt").write_bytes(b"x")
    first = progress_key(ckpts, None, command=True)
    assert first is not None and first.startswith("files:")
    assert progress_key(ckpts, None, command=True) == first  # unchanged files: the same key
    (ckpts / "model.pt").write_bytes(b"xy")
    assert progress_key(ckpts, None, command=True) != first
