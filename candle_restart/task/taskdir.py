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

Readers are tolerant where a crash can leave a mess: a torn last journal line
is skipped; a malformed ``state.json`` reads as None with the reason.
``task.json`` is strict: a malformed one is bad input (`TaskError`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from candle_restart.ckpt import fsio
from candle_restart.errors import CkptError
from candle_restart.records.jsonio import JsonError, JsonFileError, finite, loads, read_json

TASK_FILE = "task.json"
STATE_FILE = "state.json"
JOURNAL_FILE = "journal.jsonl"  # the coordinators' events (and, before version 0.2, the runners')
RUNS_FILE = "runs.jsonl"  # the runners' events
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,199}$")


class TaskError(CkptError):
    """A task directory or its ``task.json`` is invalid (bad input: exit 2, never retried)."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def safe_task_id(task_id: str) -> bool:
    """True for a name that is one safe path component: no '/', no '..', no leading dot."""
    return bool(_SAFE_ID.match(task_id)) and ".." not in task_id


def params_hash(params: dict[str, Any]) -> str:
    """A stable hash of parameters (key order and JSON spacing do not matter)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def make_task_id(sweep: str, params: dict[str, Any]) -> str:
    """``<sweep>-<hash of params>``, made safe as a path component."""
    cleaned = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.=+-]", "_", sweep or "task"))
    prefix = cleaned.lstrip(".=+-") or "task"  # the first character must be a letter, digit or _
    return f"{prefix[:80]}-{params_hash(params)}"


@dataclass(frozen=True)
class TaskSpec:
    """The content of ``task.json``: exactly one of ``entry`` (``pkg.mod:func``) or ``command``.

    ``python_path``: folders put first on the import path before ``entry`` is imported (a
    sweep records its YAML's folder).  ``dir_flags``: whether a ``command`` gets
    ``--ckpt_directory=`` and ``--output_dir=`` (both are in its environment either way).
    Each is written to ``task.json`` only when it differs from its default, so older
    task files read the same.
    """

    task_id: str
    params: dict[str, Any]
    entry: str | None = None
    command: list[str] | None = None
    sweep: str | None = None
    created: str = field(default_factory=now_iso)
    python_path: list[str] = field(default_factory=list)
    dir_flags: bool = True

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "schema_version": 1,
            "task_id": self.task_id,
            "params": self.params,
            "entry": self.entry,
            "command": self.command,
            "sweep": self.sweep,
            "created": self.created,
        }
        if self.python_path:
            record["python_path"] = self.python_path
        if not self.dir_flags:
            record["dir_flags"] = False
        return record


def parse_spec(data: Any, where: str) -> TaskSpec:
    """Validate a parsed ``task.json``; raise TaskError naming the key."""
    if not isinstance(data, dict):
        raise TaskError(where, None, "must hold a JSON object")
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not safe_task_id(task_id):
        raise TaskError(where, "task_id", f"must be a safe name (letters, digits, _.=+-), got {task_id!r}")
    params = data.get("params")
    if not isinstance(params, dict):
        raise TaskError(where, "params", f"must be an object of gParameters, got {type(params).__name__}")
    entry, command = data.get("entry"), data.get("command")
    if (entry is None) == (command is None):
        raise TaskError(
            where, "entry", "exactly one of 'entry' (package.module:function) or 'command' is required"
        )
    if entry is not None and (not isinstance(entry, str) or not re.match(r"^[\w.]+:[\w.]+$", entry)):
        raise TaskError(where, "entry", f"must look like package.module:function, got {entry!r}")
    if command is not None and (
        not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command)
    ):
        raise TaskError(where, "command", f"must be a non-empty list of strings, got {command!r}")
    sweep = data.get("sweep")
    if sweep is not None and not isinstance(sweep, str):
        raise TaskError(where, "sweep", f"must be a string, got {sweep!r}")
    created = data.get("created")
    python_path = data.get("python_path", [])
    if not isinstance(python_path, list) or not all(
        isinstance(p, str) and os.path.isabs(p) for p in python_path
    ):
        raise TaskError(where, "python_path", f"must be a list of absolute folders, got {python_path!r}")
    dir_flags = data.get("dir_flags", True)
    if not isinstance(dir_flags, bool):
        raise TaskError(where, "dir_flags", f"must be true or false, got {dir_flags!r}")
    return TaskSpec(
        task_id,
        params,
        entry,
        command,
        sweep,
        created if isinstance(created, str) else now_iso(),
        python_path,
        dir_flags,
    )


# The types of the journal's known keys (None is allowed for each); see docs/structure.md.
_EVENT_TYPES: dict[str, type | tuple[type, ...]] = {
    "event": str,
    "time": str,
    "attempt": int,
    "generation": int,
    "exit_code": int,
    "pid": int,
    "pid_start": int,
    "start": int,
    "status": str,
    "reason": str,
    "cause": str,
    "host": str,
    "batch": str,
    "backend": str,
    "job_id": (str, int),
    "submission": dict,
}


def well_typed(event: dict[str, Any]) -> bool:
    """True when every known key of a journal event (and of its ``submission``) has its type."""

    def ok(record: dict[str, Any]) -> bool:
        return all(
            record.get(key) is None or (not isinstance(record[key], bool) and isinstance(record[key], kind))
            for key, kind in _EVENT_TYPES.items()
        )

    return ok(event) and ok(event.get("submission") or {})


class TaskDir:
    """The files of one task directory; every write is atomic or an append."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(path))

    task_file = property(lambda self: self.path / TASK_FILE)
    state_file = property(lambda self: self.path / STATE_FILE)
    journal_file = property(lambda self: self.path / JOURNAL_FILE)
    runs_file = property(lambda self: self.path / RUNS_FILE)
    logs = property(lambda self: self.path / "logs")
    ckpts = property(lambda self: self.path / "ckpts")
    lock_file = property(lambda self: self.path / ".lock")
    run_lock_file = property(lambda self: self.path / ".run.lock")

    @property
    def task_id(self) -> str:
        return self.path.name

    def load_spec(self) -> TaskSpec:
        where = str(self.task_file)
        try:
            data = read_json(self.task_file)
        except FileNotFoundError:
            raise TaskError(where, None, "is missing") from None
        except JsonFileError as exc:
            raise TaskError(exc.where, None, exc.problem) from None
        spec = parse_spec(data, where)
        if spec.task_id != self.task_id:
            raise TaskError(
                where, "task_id", f"is {spec.task_id!r} but the directory is named {self.task_id!r}"
            )
        return spec

    def read_state(self) -> tuple[dict[str, Any] | None, str | None]:
        """(state, None), or (None, reason) when ``state.json`` is missing or malformed."""
        try:
            state = read_json(self.state_file)
        except FileNotFoundError:
            return None, "no state.json"
        except JsonFileError as exc:
            return None, f"{exc.where}: unreadable: {exc.problem}"
        if not isinstance(state, dict) or not isinstance(state.get("status"), str):
            return None, f"{self.state_file}: status: missing or not a string"
        return state, None

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace ``state.json`` atomically; strict JSON (a non-finite number, which a CANDLE
        ``ckpt-info.json`` may hold, is written as null)."""
        state = finite({**state, "task_id": self.task_id, "updated": now_iso()})
        fsio.atomic_write_bytes(
            self.state_file, (json.dumps(state, indent=1, allow_nan=False) + "\n").encode()
        )

    def append_journal(self, event: dict[str, Any]) -> None:
        """Append a coordinator's event to ``journal.jsonl``; the caller holds the task lock.

        One writer at a time per file is what makes appends safe on NFS, where
        ``O_APPEND`` is not atomic across clients: coordinators append under the
        task lock, runners (`append_run_event`) to ``runs.jsonl`` under the run lease.
        """
        _append(self.journal_file, event)

    def append_run_event(self, event: dict[str, Any]) -> None:
        """Append a runner's event to ``runs.jsonl``; the caller holds the task's run lease."""
        _append(self.runs_file, event)

    def read_journal(self) -> list[dict[str, Any]]:
        """Every whole event of both files, merged in time order (each file's own order kept
        for equal times); a torn or garbled line (a crash mid-append, or one whose known keys
        have the wrong type, see `well_typed`) is skipped."""
        events = _read_events(self.journal_file) + _read_events(self.runs_file)
        return sorted(events, key=lambda e: e["time"] if isinstance(e.get("time"), str) else "")

    def attempts(self) -> int:
        return sum(1 for e in self.read_journal() if e.get("event") == "start")

    def log_paths(self, attempt: int) -> tuple[Path, Path]:
        return self.logs / f"attempt-{attempt:03d}.out", self.logs / f"attempt-{attempt:03d}.err"


def _append(path: Path, event: dict[str, Any]) -> None:
    """Append one event line (O_APPEND, one write, fsync); strict JSON, as `TaskDir.write_state`."""
    line = json.dumps(finite({"time": now_iso(), **event}), allow_nan=False, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_events(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = loads(line)
        except JsonError:
            continue
        if isinstance(event, dict) and well_typed(event):
            events.append(event)
    return events


def create_task(
    run_root: str | os.PathLike[str],
    params: dict[str, Any],
    *,
    entry: str | None = None,
    command: list[str] | None = None,
    sweep: str = "task",
    task_id: str | None = None,
    python_path: list[str] | None = None,
    dir_flags: bool = True,
) -> TaskDir:
    """Create ``run_root/<task_id>/task.json`` (idempotent for the same spec; TaskError if it differs).

    ``python_path`` and ``dir_flags`` say how to start the task, not what it computes: an
    existing ``task.json`` that differs only in them is rewritten with the new values (so
    a fixed YAML reaches its existing tasks at their next attempt).
    """
    task_id = task_id or make_task_id(sweep, params)
    spec = TaskSpec(
        task_id, dict(params), entry, command, sweep, python_path=list(python_path or []), dir_flags=dir_flags
    )
    parse_spec(spec.to_json(), f"{run_root}/{task_id}/{TASK_FILE}")
    task = TaskDir(Path(run_root) / task_id)
    if task.task_file.exists():
        existing = task.load_spec()
        if (existing.params, existing.entry, existing.command) != (spec.params, spec.entry, spec.command):
            raise TaskError(
                str(task.task_file), "params", "already exists with different content; refusing to change it"
            )
        if (existing.python_path, existing.dir_flags) == (spec.python_path, spec.dir_flags):
            return task
        spec = replace(spec, created=existing.created)
    task.path.mkdir(parents=True, exist_ok=True)
    fsio.atomic_write_bytes(task.task_file, (json.dumps(spec.to_json(), indent=1) + "\n").encode())
    return task
