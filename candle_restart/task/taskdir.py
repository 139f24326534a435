"""A task directory: what to run (``task.json``), where it stands (``state.json``), what happened (journal).

::

    <run_root>/<task_id>/
      task.json        written once: task_id, params, entry or command, sweep, created
                       (and, when set: python_path, dir_flags)
      state.json       the last word of the runner (or coordinator), replaced atomically
      journal.jsonl    append-only events of coordinators: submit, decision (one JSON object a line)
      runs.jsonl       append-only events of runners: start, exit (read merged with the journal)
      logs/attempt-NNN.{out,err}
      ckpts/           the ckpt_directory of the training
      .lock            the task's lock file (see candle_restart.coordinator)
      .run.lock        the runner's lease: one runner of the task at a time

Each file's format, reader and writer is a record of `candle_restart.records` (`taskspec`,
`taskstate`, `journal`); this class says where the files are and writes them durably.
Readers are tolerant where a crash can leave a mess: a torn last journal line
is skipped; a malformed ``state.json`` reads as None with the reason.
``task.json`` is strict: a malformed one is bad input (`TaskError`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from candle_restart.records import journal
from candle_restart.records.journal import JOURNAL_FILE, RUNS_FILE, START, JournalEvent
from candle_restart.records.jsontypes import JsonValue
from candle_restart.records.taskspec import TASK_FILE, TaskError, TaskSpec, now_iso, safe_task_id
from candle_restart.records.taskstate import TASK_STATE_FILE, StateError, TaskState
from candle_restart.runtime import fsio

__all__ = [
    "JOURNAL_FILE",
    "RUNS_FILE",
    "TASK_FILE",
    "TASK_STATE_FILE",
    "TaskDir",
    "TaskError",
    "TaskSpec",
    "create_task",
    "make_task_id",
    "now_iso",
    "params_hash",
    "parse_spec",
    "safe_task_id",
]


def params_hash(params: Mapping[str, object]) -> str:
    """A stable hash of parameters (key order and JSON spacing do not matter)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def make_task_id(sweep: str, params: Mapping[str, object]) -> str:
    """``<sweep>-<hash of params>``, made safe as a path component."""
    cleaned = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.=+-]", "_", sweep or "task"))
    prefix = cleaned.lstrip(".=+-") or "task"  # the first character must be a letter, digit or _
    return f"{prefix[:80]}-{params_hash(params)}"


def parse_spec(data: JsonValue, where: str) -> TaskSpec:
    """Validate a parsed ``task.json``; raise TaskError naming the key (`TaskSpec.from_json`)."""
    return TaskSpec.from_json(data, where)


class TaskDir:
    """The files of one task directory; every write is atomic or an append."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(path))

    @cached_property
    def task_file(self) -> Path:
        return self.path / TASK_FILE

    @cached_property
    def state_file(self) -> Path:
        return self.path / TASK_STATE_FILE

    @cached_property
    def journal_file(self) -> Path:
        return self.path / JOURNAL_FILE

    @cached_property
    def runs_file(self) -> Path:
        return self.path / RUNS_FILE

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @cached_property
    def ckpts(self) -> Path:
        return self.path / "ckpts"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def run_lock_file(self) -> Path:
        return self.path / ".run.lock"

    @property
    def task_id(self) -> str:
        return self.path.name

    def load_spec(self) -> TaskSpec:
        """The task's `TaskSpec`; TaskError when ``task.json`` is missing, invalid, or names another task."""
        spec = TaskSpec.read(self.task_file)
        if spec.task_id != self.task_id:
            raise TaskError(
                str(self.task_file), "task_id", f"is {spec.task_id!r} but the directory is named {self.task_id!r}"
            )
        return spec

    def load_state(self) -> tuple[TaskState | None, str | None]:
        """(state, None), or (None, reason) when ``state.json`` is missing (reason ``no state.json``)
        or malformed (the one-line `StateError`)."""
        try:
            return TaskState.read(self.state_file), None
        except FileNotFoundError:
            return None, "no state.json"
        except StateError as exc:
            return None, str(exc)

    def write_state(self, state: TaskState | Mapping[str, JsonValue]) -> None:
        """Replace ``state.json`` atomically with ``state`` (a mapping is validated as the file
        would be), stamped with this task's id and now."""
        if not isinstance(state, TaskState):
            state = TaskState.from_json(dict(state), str(self.state_file))
        stamped = replace(state, task_id=self.task_id, updated=now_iso())
        fsio.atomic_write_bytes(self.state_file, stamped.to_bytes())

    def append_journal(self, event: JournalEvent | Mapping[str, JsonValue]) -> None:
        """Append a coordinator's event to ``journal.jsonl``; the caller holds the task lock.

        One writer at a time per file is what makes appends safe on NFS, where
        ``O_APPEND`` is not atomic across clients: coordinators append under the
        task lock, runners (`append_run_event`) to ``runs.jsonl`` under the run lease.
        """
        journal.append(self.journal_file, _event(event, self.journal_file))

    def append_run_event(self, event: JournalEvent | Mapping[str, JsonValue]) -> None:
        """Append a runner's event to ``runs.jsonl``; the caller holds the task's run lease."""
        journal.append(self.runs_file, _event(event, self.runs_file))

    def events(self) -> list[JournalEvent]:
        """Every whole event of both journal files, merged in time order (`candle_restart.records.journal.read`)."""
        return journal.read(self.journal_file, self.runs_file)

    def attempts(self) -> int:
        return sum(1 for e in self.events() if e.kind == START)

    def log_paths(self, attempt: int) -> tuple[Path, Path]:
        return self.logs / f"attempt-{attempt:03d}.out", self.logs / f"attempt-{attempt:03d}.err"


def _event(event: JournalEvent | Mapping[str, JsonValue], path: Path) -> JournalEvent:
    """``event`` as a `JournalEvent` (a mapping is validated as a line of ``path`` would be)."""
    if isinstance(event, JournalEvent):
        return event
    return JournalEvent.from_json(dict(event), str(path))


def create_task(
    run_root: str | os.PathLike[str],
    params: Mapping[str, JsonValue],
    *,
    entry: str | None = None,
    command: list[str] | None = None,
    sweep: str = "task",
    task_id: str | None = None,
    python_path: list[str] | None = None,
    dir_flags: bool = True,
    parent: str | None = None,
    lineage: Mapping[str, JsonValue] | None = None,
) -> TaskDir:
    """Create ``run_root/<task_id>/task.json`` (idempotent for the same spec; TaskError if it differs).

    ``python_path`` and ``dir_flags`` say how to start the task, not what it computes: an
    existing ``task.json`` that differs only in them is rewritten with the new values (so
    a fixed YAML reaches its existing tasks at their next attempt).  ``parent`` (a warm start's,
    `candle_restart.task.warm`) is part of what it computes: a different one is refused.
    """
    task_id = task_id or make_task_id(sweep, params)
    spec = TaskSpec(
        task_id,
        dict(params),
        entry,
        command,
        sweep,
        python_path=list(python_path or []),
        dir_flags=dir_flags,
        parent=parent,
        lineage=None if lineage is None else dict(lineage),
    )
    TaskSpec.from_json(spec.to_json(), f"{run_root}/{task_id}/{TASK_FILE}")
    task = TaskDir(Path(run_root) / task_id)
    if task.task_file.exists():
        existing = task.load_spec()
        if (existing.params, existing.entry, existing.command) != (spec.params, spec.entry, spec.command):
            raise TaskError(
                str(task.task_file), "params", "already exists with different content; refusing to change it"
            )
        if existing.parent != spec.parent:
            raise TaskError(
                str(task.task_file), "parent", f"already names parent {existing.parent!r}; refusing to change it"
            )
        if (existing.python_path, existing.dir_flags) == (spec.python_path, spec.dir_flags):
            return task
        spec = replace(spec, created=existing.created, lineage=existing.lineage)
    task.path.mkdir(parents=True, exist_ok=True)
    fsio.atomic_write_bytes(task.task_file, spec.to_bytes())
    return task
