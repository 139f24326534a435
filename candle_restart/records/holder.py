"""Who holds a lease, and who claimed a submission generation: small records, informative only.

* `HolderRecord`: ``<lease>.holder`` (``.writer.lock.holder``, ``.run.lock.holder``,
  ``.lock.holder``) written by the holder of a lease (`candle_restart.ckpt.lease`):
  ``what`` it is, ``host``, ``pid``, ``since`` (ISO time) and its claim ``token``.  The lease
  itself is the marker file; this record only lets a refused process say who holds it.
* `ClaimRecord`: ``<task>/.claims/g-NNNNNN``, written once by the coordinator that claimed the
  generation (``host``, ``pid``, ``time``); the file's existence is the claim.

Contract: `read_holder` raises ``OSError`` when the file cannot be read and `HolderError` (one
line) when it is not a holder record; callers treat both as "unknown".  ``to_bytes`` is a
file's content (one JSON line); the holder record is written atomically by the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.jsonio import JsonError, loads, utf8
from candle_restart.records.jsontypes import JsonObject, JsonValue, is_int


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
        data = loads(utf8(path.read_bytes()))
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
