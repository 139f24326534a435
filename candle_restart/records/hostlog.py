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

from candle_restart.records.jsonio import JsonError, loads
from candle_restart.records.jsontypes import JsonObject, JsonValue

HOSTS_FILE = ".hosts.jsonl"
CLEARED = "hosts_cleared"


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
        """The record of one parsed line; ValueError naming ``source`` and the key when it is not one."""
        if not isinstance(data, dict) or data.get("event") != CLEARED:
            raise ValueError(f"{source}: event: must be {CLEARED!r}")
        time, hosts, by = data.get("time"), data.get("hosts"), data.get("by", {})
        if not isinstance(time, str):
            raise ValueError(f"{source}: time: must be a string")
        if hosts is not None and not (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)):
            raise ValueError(f"{source}: hosts: must be null or a list of host names")
        if not isinstance(by, dict):
            raise ValueError(f"{source}: by: must be an object")
        return cls(time, None if hosts is None else tuple(str(h) for h in hosts), by)


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
        except (JsonError, ValueError):
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
