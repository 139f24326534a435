"""``local-tier.json``: where the newest checkpoint of a two-tier run lies on a node.

With ``ckpt_local_directory`` set, every checkpoint commits on a node-local
tier first and is copied to the shared ``ckpt_directory`` later
(`candle_restart.ckpt.drain`).  Readers of the shared tier (the coordinator,
the report, ``candle-restart ckpt``) cannot see the node, so the drainer keeps
this small record in the shared ``ckpt_directory``::

    {"host": "node-a", "path": "/dev/shm/ckpt/run-1a2b", "epoch": 7,
     "time": "2026-11-30T23:40:12Z", "drained": false, "batch": null}

``epoch`` is the epoch directory (``epochs/NNN``) of the newest local commit and
``batch`` its position inside that epoch (null: an epoch end; absent in records
written before it existed), ``path`` the local tier's root on ``host``, ``time``
when it committed (UTC), ``drained`` whether that checkpoint has reached the
shared tier.  The record is a hint written after the fact: a process killed
between a local commit and the record's update leaves it one checkpoint behind.
So readers go through `describe_local_tier`, which also compares the record with
the shared tier's newest checkpoint: one at least as far along supersedes it
(`LocalTierRecord.superseded`).  That is also how the checkpoint a stop commits on
the shared tier itself, not drained, leaves the record as it was.

Contract: `read_local_tier` returns None when the file is missing and raises
`LocalTierError` (one line: file, key, problem) for anything malformed;
`LocalTierRecord.to_bytes` is what the drainer writes, replacing the file atomically.

``tier-id.json`` (`TierId`) binds a node-local tier to its shared tier::

    {"tier_id": "9f1c...e2", "created": "2026-11-30T23:40:12Z"}

The first two-tier writer of a shared tier creates it there (under the writer
lease) and it never changes; each node-local tier records the identity of the
shared tier it belongs to in a ``tier-id.json`` of its own.  A node-local tier whose
identity differs (or that has none) belongs to a shared tier that was moved aside,
deleted or re-created at the same path, and is never restarted from.
`read_tier_id` returns None when the file is missing and raises `LocalTierError`
for anything malformed; I/O errors propagate (never taken for a missing identity).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.ckptinfo import CkptInfo
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonFileError, read_json
from candle_restart.records.jsontypes import JsonObject

LOCAL_TIER_FILE = "local-tier.json"
TIER_ID_FILE = "tier-id.json"
_TIER_ID = re.compile(r"^[0-9a-f]{32}$")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
Progress = tuple[int, int | None]  # a checkpoint's epoch directory (epochs/NNN) and batch (None: its end)


class LocalTierError(CkptError):
    """``local-tier.json`` is malformed (``<file>: <key>: <problem>``)."""


@dataclass(frozen=True)
class LocalTierRecord:
    """The newest node-local commit of a two-tier run (see the module docstring)."""

    host: str
    path: str
    epoch: int
    time: str
    drained: bool
    batch: int | None = None  # batches into ``epoch`` (a mid-epoch commit); None: the epoch's end

    def superseded(self, shared: Progress | None) -> bool:
        """Whether the shared tier's newest checkpoint (``shared``: its epoch directory and batch,
        None: it has none) is at least as far along as this record's: then nothing newer is only
        node-local."""
        if shared is None:
            return False
        end = float("inf")  # an epoch's end comes after every batch of it
        epoch, batch = shared
        return (epoch, end if batch is None else batch) >= (self.epoch, end if self.batch is None else self.batch)

    @staticmethod
    def now() -> str:
        """The current time as this record writes it (UTC, ISO 8601, seconds)."""
        return time.strftime(TIME_FORMAT, time.gmtime())

    def to_bytes(self) -> bytes:
        """The file's bytes (one JSON line); the caller replaces the file atomically
        (`candle_restart.runtime.fsio.atomic_write_bytes`)."""
        return (json.dumps(self.to_json()) + "\n").encode()

    def to_json(self) -> JsonObject:
        return {
            "host": self.host,
            "path": self.path,
            "epoch": self.epoch,
            "time": self.time,
            "drained": self.drained,
            "batch": self.batch,
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> LocalTierRecord:
        """The record in ``data`` (parsed JSON); `LocalTierError` naming ``where`` and the key if malformed."""
        check = Fields(where, LocalTierError)
        data = check.obj(data)
        return cls(
            host=check.string(data.get("host"), "host", nonempty=True),
            path=check.string(data.get("path"), "path", nonempty=True),
            epoch=check.integer(data.get("epoch"), "epoch", 0),
            time=check.string(data.get("time"), "time", nonempty=True),
            drained=check.flag(data.get("drained"), "drained"),
            batch=check.opt_integer(data.get("batch"), "batch", 0),
        )

    @classmethod
    def read(cls, path: Path) -> LocalTierRecord:
        """The record at ``path``: ``FileNotFoundError`` when there is none, `LocalTierError` when malformed."""
        try:
            data = read_json(path)
        except JsonFileError as exc:
            raise LocalTierError(str(path), None, exc.problem) from None
        return cls.from_json(data, str(path))


def read_local_tier(path: Path) -> LocalTierRecord | None:
    """`LocalTierRecord.read`, None when there is none (a single-tier run)."""
    try:
        return LocalTierRecord.read(path)
    except FileNotFoundError:
        return None


def progress_of(epoch: int, info: CkptInfo) -> Progress:
    """The `Progress` of the checkpoint in ``epochs/<epoch>`` whose ``ckpt-info.json`` is ``info``."""
    return (epoch, info.batch)


def describe_local_tier(shared_root: Path, shared_newest: Progress | None = None) -> str | None:
    """One line for readers of the shared tier when its newest checkpoint exists only on a node
    (or the record is malformed); None when the shared tier has the newest (or it is single-tier).

    ``shared_newest``: the epoch directory and batch (None: an epoch's end) of the shared tier's
    newest checkpoint, which supersedes a record no further along (None: it has none)."""
    try:
        record = read_local_tier(shared_root / LOCAL_TIER_FILE)
    except LocalTierError as exc:
        return f"{exc} (ignored)"
    if record is None or record.drained or record.superseded(shared_newest):
        return None
    return (
        f"newest checkpoint only node-local: epochs/{record.epoch:03d} on {record.host} "
        f"in {record.path} (committed {record.time}; not yet on this shared tier)"
    )


@dataclass(frozen=True)
class TierId:
    """The identity of a shared tier, recorded in it and in each node-local tier bound to it."""

    tier_id: str  # 32 lowercase hex digits
    created: str  # when the shared tier got it (UTC, `TIME_FORMAT`)

    @classmethod
    def new(cls) -> TierId:
        return cls(secrets.token_hex(16), LocalTierRecord.now())

    def to_bytes(self) -> bytes:
        """The file's bytes (one JSON line); the caller replaces the file atomically."""
        return (json.dumps(self.to_json()) + "\n").encode()

    def to_json(self) -> JsonObject:
        return {"tier_id": self.tier_id, "created": self.created}

    @classmethod
    def from_json(cls, data: object, where: str) -> TierId:
        """The identity in ``data`` (parsed JSON); `LocalTierError` naming ``where`` and the key if malformed."""
        check = Fields(where, LocalTierError)
        data = check.obj(data)
        tier_id = data.get("tier_id")
        if not isinstance(tier_id, str) or not _TIER_ID.match(tier_id):
            raise check.expected("tier_id", "32 lowercase hex digits", tier_id)
        return cls(tier_id, check.string(data.get("created"), "created", nonempty=True))

    @classmethod
    def read(cls, path: Path) -> TierId:
        """The identity at ``path``: ``FileNotFoundError`` when there is none.  A transient I/O error
        (EIO, ESTALE, ...) is raised as the reader's `JsonFileError`, never taken for a missing or
        foreign identity; anything malformed is `LocalTierError`."""
        try:
            data = read_json(path)
        except JsonFileError as exc:
            if exc.transient:
                raise
            raise LocalTierError(str(path), None, exc.problem) from None
        return cls.from_json(data, str(path))


def read_tier_id(path: Path) -> TierId | None:
    """`TierId.read`, None when there is none."""
    try:
        return TierId.read(path)
    except FileNotFoundError:
        return None
