"""Which checkpoint a warm-started task began from (its ``origin.json``), for `results` and the report.

A task whose ``task.json`` names a ``parent`` started from a copy of that task's checkpoint
(`candle_restart.task.warm`); ``origin.json`` says which (`candle_restart.records.origin`).
Reads only; a record that cannot be read is shown as its one-line error, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.jsontypes import JsonObject
from candle_restart.records.origin import read_origin
from candle_restart.task.taskdir import TaskDir


@dataclass(frozen=True)
class Lineage:
    """A task's parent as ``task.json`` names it, and the origin of its first checkpoint (None: not
    copied yet); ``problem``: why the records could not be read."""

    parent: str
    origin: JsonObject | None
    text: str

    def to_json(self) -> JsonObject:
        return {"parent": self.parent, "origin": self.origin}


def lineage(task_path: Path) -> Lineage | None:
    """The task's lineage (None: it names no parent)."""
    task = TaskDir(task_path)
    try:
        parent = task.load_spec().parent
        if parent is None:
            return None
        origin = read_origin(task.path)
    except CkptError as exc:
        return Lineage("?", None, str(exc))
    if origin is None:
        return Lineage(parent, None, f"{parent} (not copied yet)")
    return Lineage(parent, origin.to_json(), origin.describe())
