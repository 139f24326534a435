"""``ckpts/events.jsonl``: what happened to a checkpoint directory, one JSON object a line.

The checkpoint writer (`candle_restart.ckpt.events`) appends an `EpochEvent` for each of:

* ``epoch``: an epoch ended (``epoch``, 1-based); the monitored metric (``metric``, ``value``,
  ``mode`` "min"/"max") when a best is tracked, and every metric the framework logged
  (``metrics``);
* ``commit``: a checkpoint was committed as ``path`` (``epochs/NNN``) for ``epoch``;
  ``position`` ``{"epoch": E, "batch": B}`` when it was taken inside epoch E; ``bytes``,
  ``write_seconds`` (writing and committing), ``blocked_seconds`` (training waited), and
  ``reason``, one of `COMMIT_REASONS`; ``taken``: when its state was taken (ISO 8601; absent in
  older files);
* ``restart``: a training started: from the checkpoint ``path`` with ``epoch`` epochs done
  (``position``: inside the next one; ``via``: "last" or "fallback"), or fresh (``epoch`` and
  ``path`` null); ``seconds``: how long choosing, verifying and loading it took (absent in older files);
* ``train_start``: the session's first training step ended (its first batch end; compilation and
  the first batch's data included), once per session: where startup ends and training begins;
* ``set_aside``: the checkpoint ``path`` failed verification (``problem``) and was renamed
  ``aside``;
* ``disabled``: ``epoch`` ended with saving disabled until epoch ``until`` (``ckpt_skip_epochs``).

Every line also has ``kind``, ``time`` (ISO 8601, UTC) and ``schema_version``.

Contract:

* `append_event` writes one strict-JSON line (a non-finite number is ``null``) with one
  ``O_APPEND`` write; if the file does not end with a newline (a writer killed mid-line), the
  new line starts on a line of its own. It raises ``OSError``; the writer's caller decides
  that an event is never worth failing a training for.
* Lines are in the order the writer appended them. A commit event comes from the commit
  thread when it commits, so it may follow the next epoch's ``epoch`` event: readers key
  epochs by number, never by interleaving.
* `read_events` skips lines that are not JSON (a torn write, wherever it is) and events of a
  kind it does not know (a newer writer); a JSON line with a wrong value for a known key
  raises `EventFileError` naming the file, the line and the key. A missing file is ``[]``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, get_args

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonError, finite, loads
from candle_restart.records.jsontypes import is_int, is_number

EVENTS_FILE = "events.jsonl"
SCHEMA_VERSION = 1

EventKind = Literal["epoch", "commit", "restart", "set_aside", "disabled", "train_start"]
KINDS: tuple[str, ...] = get_args(EventKind)
# Why a checkpoint was taken: a plain epoch end (the interval, or a script's own call), the last
# epoch, a new best, a stop requested by a signal or the halt before the walltime, or a
# checkpoint inside an epoch (the batch interval).
CommitReason = Literal["epoch", "final", "best", "preempt", "midepoch"]
COMMIT_REASONS: tuple[str, ...] = get_args(CommitReason)
MODES = ("min", "max")

# The fields each kind writes (besides kind, time, schema_version), and those never null.
_FIELDS: dict[str, tuple[str, ...]] = {
    "epoch": ("epoch", "metric", "value", "mode", "metrics"),
    "commit": ("epoch", "path", "position", "bytes", "write_seconds", "blocked_seconds", "reason", "taken"),
    "restart": ("epoch", "path", "position", "via", "seconds"),
    "set_aside": ("path", "aside", "problem"),
    "disabled": ("epoch", "until"),
    "train_start": (),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "epoch": ("epoch",),
    "commit": ("epoch", "path", "reason"),
    "restart": (),
    "set_aside": ("path",),
    "disabled": ("epoch", "until"),
    "train_start": (),
}


class EventFileError(CkptError):
    """``events.jsonl`` cannot be read, or holds an event with a wrong value: one line."""


def now_iso() -> str:
    """The current time, ISO 8601 in UTC, to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def events_path(ckpt_dir: str | os.PathLike[str]) -> Path:
    """Where the events of the checkpoint directory ``ckpt_dir`` are."""
    return Path(ckpt_dir) / EVENTS_FILE


@dataclass(frozen=True)
class EpochEvent:
    """One line of ``events.jsonl``; which fields a kind uses is in the module docstring.

    ``epoch`` is the 1-based epoch for ``epoch``, ``commit`` and ``disabled``, and the epochs
    done for ``restart`` (None: a fresh start).
    """

    kind: EventKind
    time: str
    schema_version: int = SCHEMA_VERSION
    epoch: int | None = None
    metric: str | None = None
    value: float | None = None
    mode: str | None = None
    metrics: Mapping[str, float | None] | None = None
    path: str | None = None
    position: Mapping[str, int] | None = None
    bytes: int | None = None
    write_seconds: float | None = None
    blocked_seconds: float | None = None
    reason: str | None = None
    via: str | None = None
    aside: str | None = None
    problem: str | None = None
    until: int | None = None
    seconds: float | None = None
    taken: str | None = None

    @property
    def mid_epoch(self) -> bool:
        """A commit or restart of a checkpoint taken inside an epoch."""
        return self.position is not None

    def to_json(self) -> dict[str, object]:
        """The line's object: kind, time, schema_version, then the kind's fields (strict JSON)."""
        out: dict[str, object] = {"kind": self.kind, "time": self.time, "schema_version": self.schema_version}
        for name in _FIELDS[self.kind]:
            value = getattr(self, name)
            out[name] = dict(value) if isinstance(value, Mapping) else value
        cleaned: dict[str, object] = finite(out)
        return cleaned

    @classmethod
    def from_json(cls, data: object, where: str = EVENTS_FILE) -> EpochEvent | None:
        """The event ``data`` describes; None for a kind this version does not know.

        Raises `EventFileError` (``where``, the key, the problem) for a known kind with a
        value of the wrong type, or a required field missing. Non-finite numbers read as None.
        """
        check = Fields(where, EventFileError)
        data = check.obj(data)
        kind = data.get("kind")
        if kind not in KINDS or not isinstance(kind, str):
            return None
        time_ = check.string(data.get("time"), "time")
        version = check.integer(data.get("schema_version", SCHEMA_VERSION), "schema_version")
        values: dict[str, object] = {}
        for name in _FIELDS[kind]:
            value = data.get(name)
            if value is None:
                if name in _REQUIRED[kind]:
                    raise check.fail(name, f"is required in {kind} events")
                continue
            values[name] = _checked(check, kind, name, value)
        return cls(kind=kind, time=time_, schema_version=version, **values)  # type: ignore[arg-type]


def _checked(check: Fields, kind: str, name: str, value: object) -> object:
    """``value`` of field ``name`` if its type is right (non-finite numbers become None)."""
    if name in ("epoch", "until", "bytes"):
        return check.integer(value, name, 0)
    if name in ("value", "write_seconds", "blocked_seconds", "seconds"):
        number = check.number(value, name)
        return number if math.isfinite(number) else None
    if name == "metrics":
        if isinstance(value, dict) and all(v is None or is_number(v) for v in value.values()):
            return {str(k): None if v is None else finite(float(v)) for k, v in value.items()}
        raise check.expected(name, "an object of numbers", value)
    if name == "position":
        if isinstance(value, dict) and is_int(value.get("epoch")) and is_int(value.get("batch")):
            return {"epoch": value["epoch"], "batch": value["batch"]}
        raise check.expected(name, "{epoch, batch} integers", value)
    if name == "mode":
        return check.choice(value, name, MODES)
    if name == "reason" and kind == "commit":
        return check.choice(value, name, COMMIT_REASONS)
    return check.string(value, name)


def event_line(event: EpochEvent) -> bytes:
    """The bytes `append_event` writes for ``event``: compact strict JSON and a newline."""
    return (json.dumps(event.to_json(), allow_nan=False, separators=(",", ":")) + "\n").encode()


def append_event(ckpt_dir: str | os.PathLike[str], event: EpochEvent) -> None:
    """Append ``event`` to ``ckpt_dir/events.jsonl`` (created if missing); see the module contract.

    No fsync: an event is a record of what happened, not part of a checkpoint's durability.
    Raises ``OSError`` (the directory is missing, the disk is full, ...).
    """
    line = event_line(event)
    fd = os.open(events_path(ckpt_dir), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # the last writer died mid-line: keep its torn line apart
        written = os.write(fd, line)
        while written < len(line):  # only on a nearly full disk; the rest completes the line
            written += os.write(fd, line[written:])
    finally:
        os.close(fd)


def read_events(ckpt_dir: str | os.PathLike[str]) -> list[EpochEvent]:
    """Every event of ``ckpt_dir/events.jsonl`` in file order; see the module contract.

    Raises `EventFileError` when the file cannot be read or holds a malformed event.
    """
    path = events_path(ckpt_dir)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise EventFileError(str(path), None, f"cannot be read: {exc.strerror or exc}") from None
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = loads(line)
        except JsonError:
            continue  # a torn write
        event = EpochEvent.from_json(data, f"{path}: line {number}")
        if event is not None:
            events.append(event)
    return events


def count_events(ckpt_dir: str | os.PathLike[str], kind: EventKind) -> int:
    """How many events of ``kind`` ``ckpt_dir/events.jsonl`` holds; never raises (a line that does not
    read, or a file that does not, counts nothing): for progress polling, not for reports."""
    try:
        text = events_path(ckpt_dir).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return 0
    count = 0
    for line in text.splitlines():
        try:
            data = loads(line)
        except JsonError:
            continue
        count += isinstance(data, dict) and data.get("kind") == kind
    return count


__all__ = [
    "COMMIT_REASONS",
    "EVENTS_FILE",
    "KINDS",
    "CommitReason",
    "EpochEvent",
    "EventFileError",
    "EventKind",
    "append_event",
    "count_events",
    "events_path",
    "now_iso",
    "read_events",
]
