"""A task's journal: ``journal.jsonl`` (coordinators) and ``runs.jsonl`` (runners), one event a line.

`JournalEvent` is the one reader and writer of both files; `append` writes one event,
`read` merges both files.  The event names are the constants below (no other module spells
one): what each means is in the team's structure page.

Contract:

* `append` writes one strict-JSON line (non-finite numbers as null) with ``O_APPEND``, one
  ``write`` and an ``fsync``; the caller is the file's one writer (the task lock for the
  journal, the run lease for the runs file), because ``O_APPEND`` is not atomic across NFS
  clients.  A line of the journal records in ``runs_seen`` how many whole lines ``runs.jsonl``
  held when it was written; a line longer than `MAX_LINE_CHARS` has its long strings cut;
* `read` returns every whole event of both files.  **Order is the files', never the clocks'**:
  each file's events stay in the order of their lines (hosts' clocks may disagree by minutes,
  and a line's ``time`` is its writer's clock), and the two files are interleaved by each
  journal line's ``runs_seen`` (the runs lines it followed when written).  Only a journal
  line without it (written before 0.3) is interleaved by time: runs lines whose time is earlier
  come before it (an event without a time sorts first);
* a line that is torn (a crash mid-append), longer than `MAX_LINE_CHARS`, not JSON, not an
  object, names no known event, or has a known key of the wrong type (see `_TYPES`, also inside
  ``submission``; a ``generation`` outside 0..`MAX_GENERATION`) is skipped;
* ``ckpt`` (an end's checkpoint key) keeps the difference between absent (`NO_CKPT_KEY`: a
  runner older than the key) and null (no checkpoint yet).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonError, finite, loads
from candle_restart.records.jsontypes import JsonObject, JsonValue
from candle_restart.records.taskspec import now_iso

JOURNAL_FILE = "journal.jsonl"  # the coordinators' events (and, before version 0.2, the runners')
RUNS_FILE = "runs.jsonl"  # the runners' events

EventKind = Literal[
    "submit_intent",
    "submitted",
    "submit_failed",
    "submit_abandoned",
    "start",
    "exit",
    "stale_start",
    "stale_exit",
    "runner_lost",
    "run_refused",
    "on_preempt",
    "ckpts_set_aside",
    "retry_requested",
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
SUBMIT_INTENT: EventKind = "submit_intent"
SUBMITTED: EventKind = "submitted"
SUBMIT_FAILED: EventKind = "submit_failed"
SUBMIT_ABANDONED: EventKind = "submit_abandoned"
START: EventKind = "start"
EXIT: EventKind = "exit"
STALE_START: EventKind = "stale_start"
STALE_EXIT: EventKind = "stale_exit"
RUNNER_LOST: EventKind = "runner_lost"
RUN_REFUSED: EventKind = "run_refused"
ON_PREEMPT: EventKind = "on_preempt"
CKPTS_SET_ASIDE: EventKind = "ckpts_set_aside"
RETRY_REQUESTED: EventKind = "retry_requested"

MAX_LINE_CHARS = 1 << 20  # a line longer than this is skipped (no event of ours comes near it)
MAX_GENERATION = 999_999_999  # submission generations are 0 (a runner started by hand) up to this
_CUT = 4000  # a line over MAX_LINE_CHARS is written with its strings cut to this length

NO_CKPT_KEY = "<unknown>"  # an end recorded without its checkpoint key (an older runner)

# The types of the known keys (None is allowed for each); a line breaking one is skipped.
_TYPES: dict[str, type | tuple[type, ...]] = {
    "event": str,
    "time": str,
    "attempt": int,
    "generation": int,
    "exit_code": int,
    "pid": int,
    "pid_start": int,
    "start": int,
    "status": str,
    "reason": str,
    "cause": str,
    "host": str,
    "batch": str,
    "backend": str,
    "job_id": (str, int),
    "submission": dict,
    "ckpt": str,
    "runs_seen": int,
}
# The keys with a field of their own; every other key is in `JournalEvent.extras`.
_TYPED = ("attempt", "generation", "exit_code", "status", "reason", "cause", "batch", "submission", "runs_seen")


class JournalError(CkptError, ValueError):
    """A line that is not an event (one line: the file and line, the key, the problem); `read` skips it."""


def _wrong_key(record: Mapping[str, JsonValue]) -> str | None:
    """The first known key of ``record`` whose value has the wrong type (see `_TYPES`), or None."""
    generation = record.get("generation")
    if isinstance(generation, int) and not 0 <= generation <= MAX_GENERATION:
        return "generation"
    for key, value in record.items():  # the record's keys, not every known one: a line has few
        kind = _TYPES.get(key)
        if kind is not None and value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            return key
    return None


@dataclass(frozen=True)
class JournalEvent:
    """One event.  ``kind`` is its ``event`` key; ``extras`` holds every key without a field
    (who: ``host``, ``pid``, ``pid_start``, Slurm ids; ``backend``, ``by``, ``error``, ...)."""

    kind: EventKind
    time: str | None = None
    attempt: int | None = None
    generation: int | None = None
    exit_code: int | None = None
    status: str | None = None
    reason: str | None = None
    cause: str | None = None
    ckpt: str | None = NO_CKPT_KEY
    batch: str | None = None
    submission: JsonObject | None = None
    runs_seen: int | None = None  # a journal line: the whole lines of runs.jsonl when it was written
    extras: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> JournalEvent:
        """The event of one parsed line; `JournalError` (naming ``source`` and the key) if it is not one."""
        check = Fields(source, JournalError)
        data = check.obj(data)
        kind = check.choice(data.get("event"), "event", EVENT_KINDS)
        submission = data.get("submission")
        wrong, inner = _wrong_key(data), _wrong_key(submission) if isinstance(submission, dict) else None
        if wrong is not None or inner is not None:
            raise check.fail(wrong or ("submission", str(inner)), "has the wrong type")
        time, ckpt = data.get("time"), data.get("ckpt", NO_CKPT_KEY)
        typed = {k: data.get(k) for k in _TYPED}
        return cls(
            kind=kind,
            time=time if isinstance(time, str) else None,
            ckpt=ckpt if isinstance(ckpt, str) else None,
            extras={k: v for k, v in data.items() if k not in ("event", "time", "ckpt", *_TYPED)},
            **typed,  # type: ignore[arg-type]
        )

    def _extra_str(self, key: str) -> str | None:
        value = self.extras.get(key)
        return value if isinstance(value, str) else None

    @property
    def host(self) -> str | None:
        """The writer's host (a runner's or a coordinator's), when the line says."""
        return self._extra_str("host")

    @property
    def pid(self) -> int | None:
        """The writer's process id, when the line says."""
        value = self.extras.get("pid")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def job_id(self) -> str | None:
        """Slurm's job id of the runner (a string; an integer in some older lines), when set."""
        value = self.extras.get("job_id")
        return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None

    @property
    def array_job_id(self) -> str | None:
        return self._extra_str("array_job_id")

    @property
    def array_task_id(self) -> str | None:
        return self._extra_str("array_task_id")

    def to_json(self) -> JsonObject:
        """The line's object: ``time``, ``event``, then every field that is set (``ckpt`` when
        not `NO_CKPT_KEY`; an ``exit``'s ``cause`` even when null), then the extras."""
        record: JsonObject = {"time": self.time, "event": self.kind} if self.time else {"event": self.kind}
        for key in _TYPED:
            value = getattr(self, key)
            if value is not None or (key == "cause" and self.kind == EXIT):
                record[key] = value
        if self.ckpt != NO_CKPT_KEY:
            record["ckpt"] = self.ckpt
        record.update(self.extras)
        return record


def append(path: Path, event: JournalEvent) -> None:
    """Append ``event`` (stamped now when it has no time; a line of `JOURNAL_FILE` with
    ``runs_seen``) as one line; see the module contract."""
    record = event.to_json()
    record = {"time": now_iso(), **record} if event.time is None else record
    if path.name == JOURNAL_FILE:
        record["runs_seen"] = _count_lines(path.with_name(RUNS_FILE))
    line = json.dumps(finite(record), allow_nan=False, separators=(",", ":"))
    if len(line) > MAX_LINE_CHARS:  # never write a line the reader skips
        line = json.dumps(_cut(finite(record)), allow_nan=False, separators=(",", ":"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut(value: JsonValue) -> JsonValue:
    """``value`` with every string longer than `_CUT` cut to it (the end marked)."""
    if isinstance(value, str):
        return value if len(value) <= _CUT else value[:_CUT] + " [cut]"
    if isinstance(value, dict):
        return {k[:_CUT]: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value[:_CUT]]
    return value


def _count_lines(path: Path) -> int:
    """The number of whole lines (newlines) in ``path``; 0 when it is missing."""
    count = 0
    try:
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                count += chunk.count(b"\n")
    except FileNotFoundError:
        return 0
    return count


def _numbered(path: Path) -> list[tuple[int, JournalEvent]]:
    """Every whole event of one file with its line number (1-based; lines end at ``\\n`` only)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    events = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").split("\n"), 1):
        if not line or len(line) > MAX_LINE_CHARS:
            continue
        try:
            events.append((number, JournalEvent.from_json(loads(line), f"{path}:{number}")))
        except (JsonError, JournalError):
            continue
    return events


def read_file(path: Path) -> list[JournalEvent]:
    """Every whole event of one file, in its order (see the module contract; missing: none)."""
    return [event for _, event in _numbered(path)]


def read(journal_file: Path, runs_file: Path) -> list[JournalEvent]:
    """Both files' events, each in its own order, interleaved (see the module contract)."""
    runs = _numbered(runs_file)
    merged: list[JournalEvent] = []
    taken = 0
    for _, event in _numbered(journal_file):
        if event.runs_seen is not None:
            while taken < len(runs) and runs[taken][0] <= event.runs_seen:
                merged.append(runs[taken][1])
                taken += 1
        else:  # a line from before ``runs_seen``: its writer's clock is all there is
            while taken < len(runs) and (runs[taken][1].time or "") < (event.time or ""):
                merged.append(runs[taken][1])
                taken += 1
        merged.append(event)
    merged.extend(event for _, event in runs[taken:])
    return merged
