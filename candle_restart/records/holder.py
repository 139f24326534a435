"""Who holds a lease, and who claimed a submission generation: small records, informative only.

* `HolderRecord`: ``<lease>.holder`` (``.writer.lock.holder``, ``.run.lock.holder``,
  ``.lock.holder``) written by the holder of a lease (`candle_restart.runtime.lease`):
  ``what`` it is, ``host``, ``pid``, ``since`` (ISO time) and its claim ``token``.  The lease
  itself is the marker file; this record only lets a refused process say who holds it.
* `ClaimRecord`: ``<task>/.claims/g-NNNNNN``, written once by the coordinator that claimed the
  generation (``host``, ``pid``, ``time``); the file's existence is the claim.  Its name is
  `claim_name`; `claimed_generation` reads one back strictly (``g-`` and 6 to 9 ASCII digits,
  at most `MAX_GENERATION`), so a garbage name (``g-`` and 120 nines, Arabic-Indic digits) is
  never taken for a claim.
* `SightingRecord`: ``<task>/.seen/<host>``, when a coordinator on that host first saw a
  submission pending without an outcome (or a failure to back off from), on that host's clock.

Contract: `HolderRecord.read` (`read_holder`) raises ``OSError`` when the file cannot be read and `HolderError` (one
line) when it is not a holder record; callers treat both as "unknown".  ``to_bytes`` is a
file's content (one JSON line); the holder record is written atomically by the caller.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.journal import MAX_GENERATION
from candle_restart.records.jsonio import JsonError, loads, read_regular, utf8
from candle_restart.records.jsontypes import JsonObject, JsonValue


class HolderError(CkptError):
    """A holder file that is not a holder record."""


@dataclass(frozen=True)
class HolderRecord:
    """The holder of a lease (see the module docstring)."""

    what: str
    host: str
    pid: int
    since: str | None
    token: str | None

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> HolderRecord:
        """The holder in a parsed file (``source`` names it); `HolderError` naming the key if it is not one."""
        check = Fields(source, HolderError)
        data = check.obj(data)
        return cls(
            check.string(data.get("what"), "what"),
            check.string(data.get("host"), "host"),
            check.integer(data.get("pid"), "pid"),
            check.opt_string(data.get("since"), "since"),
            check.opt_string(data.get("token"), "token"),
        )

    def to_json(self) -> JsonObject:
        return {
            "what": self.what,
            "host": self.host,
            "pid": self.pid,
            "since": self.since,
            "token": self.token,
        }

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json()) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> HolderRecord:
        """The holder record in ``path`` (see the module contract)."""
        return cls.from_json(_read(path), str(path))


def _read(path: Path) -> JsonValue:
    """The parsed content of a small record file: ``OSError`` when it cannot be read, `HolderError`
    when it is not JSON."""
    try:
        parsed: JsonValue = loads(utf8(read_regular(path)))
    except (JsonError, ValueError) as exc:
        raise HolderError(str(path), None, str(exc)) from None
    return parsed


read_holder = HolderRecord.read  # the name the lease code reads it by


@dataclass(frozen=True)
class ClaimRecord:
    """Who claimed a submission generation, and when."""

    host: str
    pid: int
    time: str

    def to_json(self) -> JsonObject:
        return {"host": self.host, "pid": self.pid, "time": self.time}

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json()) + "\n").encode()

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> ClaimRecord:
        """The claim in a parsed file (for people and tools: the coordinators read only its name)."""
        check = Fields(source, HolderError)
        data = check.obj(data)
        return cls(
            check.string(data.get("host"), "host"),
            check.integer(data.get("pid"), "pid"),
            check.string(data.get("time"), "time"),
        )

    @classmethod
    def read(cls, path: Path) -> ClaimRecord:
        """The claim in ``path``: ``OSError`` when it cannot be read, `HolderError` when it is not one."""
        return cls.from_json(_read(path), str(path))


_CLAIM_NAME = re.compile(r"g-([0-9]{6,9})")  # ASCII digits only: str.isdigit() takes "٣٣" for 33


def claim_name(generation: int) -> str:
    """The file name of the claim of ``generation`` (ValueError outside 0..`MAX_GENERATION`)."""
    if not 0 <= generation <= MAX_GENERATION:
        raise ValueError(f"generation {generation} is outside 0..{MAX_GENERATION}")
    return f"g-{generation:06d}"


def claimed_generation(name: str) -> int | None:
    """The generation a claim file named ``name`` claims; None when ``name`` is not one `claim_name` writes."""
    match = _CLAIM_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class SightingRecord:
    """``<task>/.seen/<host>``: when a coordinator on ``host`` first saw ``what`` (an intent
    without an outcome, a failure to back off from), on ``host``'s own clock (``since``, seconds
    since the epoch).

    Only processes on ``host`` compare ``since`` with their clock, so clocks of different hosts
    are never compared (see `candle_restart.coordinator.grace`).
    """

    host: str
    what: str
    since: float

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> SightingRecord:
        """The sighting in a parsed file (``source`` names it); `HolderError` naming the key if it is not one."""
        check = Fields(source, HolderError)
        data = check.obj(data)
        since = check.number(data.get("since"), "since")
        if not math.isfinite(since):
            raise check.expected("since", "a finite number", since)
        return cls(check.string(data.get("host"), "host"), check.string(data.get("what"), "what"), since)

    def to_json(self) -> JsonObject:
        return {"host": self.host, "what": self.what, "since": self.since}

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json()) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> SightingRecord:
        """The sighting record in ``path``: ``OSError`` when it cannot be read (``FileNotFoundError``
        when missing), `HolderError` (one line) when it is not one."""
        return cls.from_json(_read(path), str(path))
