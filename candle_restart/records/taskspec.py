"""``task.json``: what a task runs.  `TaskSpec` is its one reader and writer.

::

    {"schema_version": 1, "task_id": ..., "params": {...}, "entry": "pkg.mod:func" or null,
     "command": [...] or null, "sweep": ..., "created": ISO time,
     "python_path": [...] (only when set), "dir_flags": false (only when false),
     "parent": a task id in the same run root or an absolute task directory (only when set: the
     task starts from a copy of that task's newest verified checkpoint, `candle_restart.task.warm`),
     "lineage": {"generation": int, "member": int, "exploited": bool, ...} (only when set: a
     population-based search's bookkeeping, `candle_restart.sweep.pbt`)}

Contract:

* `TaskSpec.from_json` accepts every ``task.json`` written so far (``schema_version``,
  ``python_path`` and ``dir_flags`` may be missing; a missing or odd ``created`` reads as now)
  and refuses anything else with a `TaskError` naming the file and the key, in one line;
* `TaskSpec.to_bytes` is the file's content (indented JSON, ``python_path`` and
  ``dir_flags`` written only when they differ from their defaults, so older files read the
  same); the caller writes it atomically (`candle_restart.runtime.fsio`);
* `TaskSpec.read` raises `TaskError` for a missing, unreadable or invalid file: a task with a bad
  ``task.json`` is bad input (exit 2, never retried).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonFileError, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue

TASK_FILE = "task.json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,199}$")
_ENTRY = re.compile(r"^[\w.]+:[\w.]+$")


class TaskError(CkptError):
    """A task directory or its ``task.json`` is invalid (bad input: exit 2, never retried)."""


def now_iso() -> str:
    """The time stamp of every task record: UTC, ISO 8601, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def safe_task_id(task_id: str) -> bool:
    """True for a name that is one safe path component: no '/', no '..', no leading dot."""
    return bool(_SAFE_ID.match(task_id)) and ".." not in task_id


def valid_parent(parent: object) -> bool:
    """True for what ``parent`` may name: a safe task id (a sibling) or an absolute directory."""
    return isinstance(parent, str) and (safe_task_id(parent) or (os.path.isabs(parent) and "\0" not in parent))


@dataclass(frozen=True)
class TaskSpec:
    """The content of ``task.json``: exactly one of ``entry`` (``pkg.mod:func``) or ``command``.

    ``python_path``: folders put first on the import path before ``entry`` is imported (a
    sweep records its YAML's folder).  ``dir_flags``: whether a ``command`` gets
    ``--ckpt_directory=`` and ``--output_dir=`` (both are in its environment either way).
    """

    task_id: str
    params: JsonObject
    entry: str | None = None
    command: list[str] | None = None
    sweep: str | None = None
    created: str = field(default_factory=now_iso)
    python_path: list[str] = field(default_factory=list)
    dir_flags: bool = True
    parent: str | None = None
    lineage: JsonObject | None = None

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> TaskSpec:
        """Validate a parsed ``task.json`` (``source`` names it in errors); `TaskError` naming the key."""
        check = Fields(source, TaskError)
        data = check.obj(data)
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not safe_task_id(task_id):
            raise check.expected("task_id", "a safe name (letters, digits, _.=+-)", task_id)
        params = data.get("params")
        if not isinstance(params, dict):
            raise check.fail("params", f"must be an object of gParameters, got {type(params).__name__}")
        entry, command = data.get("entry"), data.get("command")
        if (entry is None) == (command is None):
            raise check.fail("entry", "exactly one of 'entry' (package.module:function) or 'command' is required")
        if entry is not None and (not isinstance(entry, str) or not _ENTRY.match(entry)):
            raise check.fail("entry", f"must look like package.module:function, got {entry!r}")
        if command is not None and not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
            raise check.expected("command", "a non-empty list of strings", command)
        python_path = check.strings(data.get("python_path", []), "python_path")
        if not all(os.path.isabs(p) for p in python_path):
            raise check.expected("python_path", "a list of absolute folders", python_path)
        created = data.get("created")
        parent = data.get("parent")
        if parent is not None and not valid_parent(parent):
            raise check.expected("parent", "a task id or an absolute task directory", parent)
        lineage = data.get("lineage")
        if lineage is not None and not isinstance(lineage, dict):
            raise check.fail("lineage", f"must be an object, got {type(lineage).__name__}")
        return cls(
            task_id,
            params,
            entry,
            check.opt_strings(command, "command"),
            check.opt_string(data.get("sweep"), "sweep"),
            created if isinstance(created, str) else now_iso(),
            python_path,
            check.flag(data.get("dir_flags", True), "dir_flags"),
            parent if isinstance(parent, str) else None,
            lineage if isinstance(lineage, dict) else None,
        )

    def to_json(self) -> JsonObject:
        """The object written to ``task.json`` (see the module docstring)."""
        record: JsonObject = {
            "schema_version": 1,
            "task_id": self.task_id,
            "params": self.params,
            "entry": self.entry,
            "command": list(self.command) if self.command is not None else None,
            "sweep": self.sweep,
            "created": self.created,
        }
        if self.python_path:
            record["python_path"] = list(self.python_path)
        if not self.dir_flags:
            record["dir_flags"] = False
        if self.parent is not None:
            record["parent"] = self.parent
        if self.lineage is not None:
            record["lineage"] = self.lineage
        return record

    def to_bytes(self) -> bytes:
        """The content of ``task.json``."""
        return (json.dumps(self.to_json(), indent=1) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> TaskSpec:
        """The `TaskSpec` in ``path``; `TaskError` (one line) when it is missing, unreadable or invalid."""
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise TaskError(str(path), None, "is missing") from None
        except JsonFileError as exc:
            raise TaskError(exc.where, None, exc.problem) from None
        return cls.from_json(data, str(path))


