"""Where a warm-started task's first checkpoint came from: `Origin`.

A task that names a parent (``task.json``'s ``parent``) starts from a copy of the parent's
newest verified checkpoint (`candle_restart.task.warm`).  The copy's ``ckpt-info.json``
records its ``origin`` (`CkptInfo.origin`), and the task directory keeps the same record in
``origin.json`` (written after the copy is committed), so the lineage stays readable after the
keep policy removed the copied epoch::

    {"parent": "<task id or path as task.json names it>", "parent_path": "/abs/task/dir",
     "epoch": 4, "position": null or {"epoch", "batch"}, "checksum": "<the parent model file's
     CRC-32>" or null, "key": "<the parent checkpoint's commit key>", "time": ISO time}

Contract: `Origin.from_json` accepts exactly this shape and raises `OriginError` (one line:
file, key, problem) for anything else; `Origin.to_json` is the object written (in
``ckpt-info.json`` under ``origin``, and as ``origin.json``); `read_origin` is None when the
task has no ``origin.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonFileError, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue

ORIGIN_FILE = "origin.json"


class OriginError(CkptError):
    """An origin record of the wrong shape (one line naming the file and the key)."""


@dataclass(frozen=True)
class Origin:
    """The parent checkpoint a task's first checkpoint was copied from."""

    parent: str
    parent_path: str
    epoch: int
    checksum: str | None
    key: str | None
    time: str
    position: tuple[int, int] | None = None  # (epoch, batch) of a mid-epoch parent checkpoint

    def to_json(self) -> JsonObject:
        return {
            "parent": self.parent,
            "parent_path": self.parent_path,
            "epoch": self.epoch,
            "position": None if self.position is None else {"epoch": self.position[0], "batch": self.position[1]},
            "checksum": self.checksum,
            "key": self.key,
            "time": self.time,
        }

    def to_bytes(self) -> bytes:
        """The content of ``origin.json``; the caller writes it atomically."""
        return (json.dumps(self.to_json(), indent=1) + "\n").encode()

    def describe(self) -> str:
        """One phrase for people: ``<parent> epoch N (model CRC c)``, or its commit key without a CRC."""
        if self.checksum and self.checksum.isdigit():
            return f"{self.parent} epoch {self.epoch} (model CRC {self.checksum})"
        return f"{self.parent} epoch {self.epoch}" + (f" (commit {self.key})" if self.key else "")

    @classmethod
    def from_json(cls, data: JsonValue, source: str, key: str | None = None) -> Origin:
        """Validate ``data``; errors name ``source`` and ``key.<field>`` (``key``: where it sits)."""
        check = Fields(source, OriginError)

        def at(*name: str) -> tuple[str, ...]:
            return (key, *name) if key else name

        origin = check.obj(data, at())
        raw = origin.get("position")
        position: tuple[int, int] | None = None
        if raw is not None:
            where = check.obj(raw, at("position"))
            position = (
                check.integer(where.get("epoch"), at("position", "epoch"), 0),
                check.integer(where.get("batch"), at("position", "batch"), 0),
            )
        return cls(
            parent=check.string(origin.get("parent"), at("parent")),
            parent_path=check.string(origin.get("parent_path"), at("parent_path")),
            epoch=check.integer(origin.get("epoch"), at("epoch"), 0),
            checksum=check.opt_string(origin.get("checksum"), at("checksum")),
            key=check.opt_string(origin.get("key"), at("key")),
            time=check.string(origin.get("time"), at("time")),
            position=position,
        )


def read_origin(task_path: Path) -> Origin | None:
    """The task's ``origin.json``; None when it has none; `OriginError` when it is unreadable."""
    path = Path(task_path) / ORIGIN_FILE
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None
    except JsonFileError as exc:
        raise OriginError(exc.where, None, exc.problem) from None
    return Origin.from_json(data, str(path))
