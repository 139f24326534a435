"""Helpers for coordinator tests: toy tasks in known states, and waiting for detached runners."""

from __future__ import annotations

import os
import select
from pathlib import Path
from typing import Any

import pytest

from candle_restart.task import TaskDir, create_task, run_task
from tests.task.conftest import ROOT

TOY = "tests.coordinator.toy:run"


@pytest.fixture(autouse=True)
def runners_can_import_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runners started by the local backend inherit the environment: let them import the toy."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def toy_task(root: Path, name: str, **params: Any) -> TaskDir:
    params.setdefault("epochs", 3)
    return create_task(root, params, entry=TOY, sweep=name)


def preempted_task(root: Path, name: str, **params: Any) -> TaskDir:
    task = toy_task(root, name, preempt_at=1, **params)
    assert run_task(task.path) == 75
    return task


def wait_for_pids(pids: list[int]) -> None:
    """Block until every process in ``pids`` has exited (pidfd: works for processes we did not start)."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [])
        finally:
            os.close(fd)


def submitted_pids(task: TaskDir) -> list[int]:
    return [
        e["submission"]["pid"]
        for e in task.read_journal()
        if e.get("event") == "submitted" and e.get("submission")
    ]
