"""A run root's ``.hosts.jsonl``: each time a user cleared the bad-host record, one JSON line.

``{"event": "hosts_cleared", "time": ISO, "hosts": [names] | null, "by": {"host", "pid", "user"}}``;
``hosts`` null clears every host. The per-host record itself is not stored: it is derived from the
tasks' journals at each read (`candle_restart.coordinator.hostfacts`); this file only says from
when on each host's ends count again.

Contract: `append_clear` writes one strict-JSON line with one ``O_APPEND`` write and an fsync
(nothing else is ever written to the file); `read_clears` returns every whole, well-formed line's
record in file order and skips a torn or malformed line (a crash mid-append loses that line only);
a missing file holds none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonError, loads
from candle_restart.records.jsontypes import JsonObject, JsonValue

HOSTS_FILE = ".hosts.jsonl"
CLEARED = "hosts_cleared"


class HostsFileError(CkptError):
    """A line of ``.hosts.jsonl`` that is not a clear (``<file>:<line>: <key>: <problem>``)."""


@dataclass(frozen=True)
class HostsCleared:
    """One clear: when (``time``, ISO 8601, the clearing host's clock), which ``hosts`` (None: all), by whom."""

    time: str
    hosts: tuple[str, ...] | None = None
    by: Mapping[str, JsonValue] = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        return {
            "event": CLEARED,
            "time": self.time,
            "hosts": None if self.hosts is None else list[JsonValue](self.hosts),
            "by": dict(self.by),
        }

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> HostsCleared:
        """The record of one parsed line; `HostsFileError` naming ``source`` and the key when it is not one."""
        check = Fields(source, HostsFileError)
        line = check.obj(data)
        check.choice(line.get("event"), "event", (CLEARED,))
        hosts = check.opt_strings(line.get("hosts"), "hosts")
        return cls(
            check.string(line.get("time"), "time"),
            None if hosts is None else tuple(hosts),
            check.obj(line.get("by", {}), "by"),
        )


def hosts_file(run_root: str | os.PathLike[str]) -> Path:
    return Path(run_root) / HOSTS_FILE


def read_clears(run_root: str | os.PathLike[str]) -> list[HostsCleared]:
    """Every clear recorded under ``run_root``, in file order (see the module contract)."""
    path = hosts_file(run_root)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out: list[HostsCleared] = []
    lines = text.split("\n")
    for number, line in enumerate(lines[:-1] if not text.endswith("\n") else lines, 1):
        if not line.strip():
            continue
        try:
            out.append(HostsCleared.from_json(loads(line), f"{path}:{number}"))
        except (JsonError, HostsFileError):
            continue
    return out


def append_clear(run_root: str | os.PathLike[str], record: HostsCleared) -> None:
    """Append ``record`` to ``run_root``'s `HOSTS_FILE` (one write, fsynced)."""
    line = json.dumps(record.to_json(), allow_nan=False, separators=(",", ":")) + "\n"
    fd = os.open(hosts_file(run_root), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["CLEARED", "HOSTS_FILE", "HostsCleared", "append_clear", "hosts_file", "read_clears"]
