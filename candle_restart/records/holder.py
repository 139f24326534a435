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

Contract: `read_holder` raises ``OSError`` when the file cannot be read and `HolderError` (one
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
from candle_restart.records.journal import MAX_GENERATION
from candle_restart.records.jsonio import JsonError, loads, read_regular, utf8
from candle_restart.records.jsontypes import JsonObject, JsonValue, is_int, is_number


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
        if not isinstance(data, dict):
            raise HolderError(source, None, "must hold a JSON object")
        what, host, pid = data.get("what"), data.get("host"), data.get("pid")
        since, token = data.get("since"), data.get("token")
        for key, value, ok in (
            ("what", what, isinstance(what, str)),
            ("host", host, isinstance(host, str)),
            ("pid", pid, is_int(pid)),
            ("since", since, since is None or isinstance(since, str)),
            ("token", token, token is None or isinstance(token, str)),
        ):
            if not ok:
                raise HolderError(source, key, f"has the wrong type: {value!r}"[:300])
        assert isinstance(what, str) and isinstance(host, str) and isinstance(pid, int)
        return cls(
            what,
            host,
            pid,
            since if isinstance(since, str) else None,
            token if isinstance(token, str) else None,
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


def read_holder(path: Path) -> HolderRecord:
    """The holder record in ``path`` (see the module contract)."""
    try:
        data = loads(utf8(read_regular(path)))
    except (JsonError, ValueError) as exc:
        raise HolderError(str(path), None, str(exc)) from None
    return HolderRecord.from_json(data, str(path))


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
        if not isinstance(data, dict):
            raise HolderError(source, None, "must hold a JSON object")
        host, what, since = data.get("host"), data.get("what"), data.get("since")
        for key, value, ok in (
            ("host", host, isinstance(host, str)),
            ("what", what, isinstance(what, str)),
            ("since", since, isinstance(since, (int, float)) and is_number(since) and math.isfinite(since)),
        ):
            if not ok:
                raise HolderError(source, key, f"has the wrong type: {value!r}"[:300])
        assert isinstance(host, str) and isinstance(what, str) and isinstance(since, (int, float))
        return cls(host, what, float(since))

    def to_json(self) -> JsonObject:
        return {"host": self.host, "what": self.what, "since": self.since}

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json()) + "\n").encode()


def read_sighting(path: Path) -> SightingRecord:
    """The sighting record in ``path``: ``OSError`` when it cannot be read (``FileNotFoundError``
    when missing), `HolderError` (one line) when it is not one."""
    try:
        data = loads(utf8(read_regular(path)))
    except (JsonError, ValueError) as exc:
        raise HolderError(str(path), None, str(exc)) from None
    return SightingRecord.from_json(data, str(path))
