"""Task directories for the tests: toy tasks in known states, and reading one back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from candle_restart.records.journal import SUBMITTED, JournalEvent
from candle_restart.task import TaskDir, create_task, run_task

TOY = "tests.coordinator.toy:run"


def toy_task(root: Path, name: str, **params: Any) -> TaskDir:
    """A task of the toy entry (3 epochs unless ``params`` say otherwise) in sweep ``name``; not run."""
    params.setdefault("epochs", 3)
    return create_task(root, params, entry=TOY, sweep=name)


def preempted_task(root: Path, name: str, **params: Any) -> TaskDir:
    """A toy task run once in this process and preempted after its first epoch (exit 75)."""
    task = toy_task(root, name, preempt_at=1, **params)
    assert run_task(task.path) == 75
    return task


def submitted_pids(task: TaskDir) -> list[int]:
    """The PIDs of the runners the local backend started for ``task`` (its ``submitted`` events)."""
    pids: list[int] = []
    for e in task.events():
        if e.kind == SUBMITTED and e.submission is not None:
            pid = e.submission.get("pid")
            assert isinstance(pid, int), e.submission
            pids.append(pid)
    return pids


def state(task_dir: Path) -> dict[str, Any]:
    """The task's ``state.json``."""
    return json.loads((task_dir / "state.json").read_text())


def journal(task_dir: Path) -> list[JournalEvent]:
    """The task's journal and its runners' events, merged (`TaskDir.events`); every line must be whole."""
    for name in ("journal.jsonl", "runs.jsonl"):
        if (task_dir / name).exists():
            for line in (task_dir / name).read_text().splitlines():
                json.loads(line)  # raises on a torn line
    return TaskDir(task_dir).events()
