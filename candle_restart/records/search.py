"""An adaptive search's own records: a task's ``pruned.json`` and the run root's ``.search-<name>.jsonl``.

* ``<task>/pruned.json`` (`PruneRecord`): the search stopped this task early (``reason``, the
  ``epoch`` it had reached, ``time``).  Written before the task's runner is asked to stop, so a
  task whose runner then exits is ``pruned`` in every view, terminal and never resubmitted;
* ``<run_root>/.search-<name>.jsonl`` (`TellRecord`, one a line): each outcome the driver told
  its sampler, in order: the ``trial`` number, its ``state`` (complete, pruned, fail), its
  ``value`` and ``asks``, how many trials had been asked when it was told (with the search's
  ``metric`` and ``direction``, so that the log alone can be read: the report's history).  A restarted driver
  replays asks and tells in this order, so a sampler deterministic given its seed and history
  makes the same points.

Contract: `PruneRecord.from_json` and `read_tells` raise `SearchRecordError` (one line: file,
key, problem) for a value of the wrong kind; a torn line of the log (a driver killed
mid-append) is skipped; `append_tell` writes one line with one ``O_APPEND`` write and an fsync.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonError, JsonFileError, loads, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue

PRUNED_FILE = "pruned.json"
TellState = Literal["complete", "pruned", "fail"]
TELL_STATES: tuple[TellState, ...] = get_args(TellState)


class SearchRecordError(CkptError):
    """A search record that cannot be read or holds a value of the wrong kind (one line)."""


def log_path(run_root: Path, name: str) -> Path:
    """Where the search log of sweep ``name`` is."""
    return Path(run_root) / f".search-{name}.jsonl"


@dataclass(frozen=True)
class PruneRecord:
    """``pruned.json``: why and when a task was stopped early."""

    reason: str
    epoch: int | None
    time: str

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> PruneRecord:
        check = Fields(source, SearchRecordError)
        data = check.obj(data)
        return cls(
            check.string(data.get("reason"), "reason"),
            check.opt_integer(data.get("epoch"), "epoch"),
            check.string(data.get("time"), "time"),
        )

    def to_json(self) -> JsonObject:
        return {"reason": self.reason, "epoch": self.epoch, "time": self.time}

    def to_bytes(self) -> bytes:
        """The file's content; the caller writes it atomically (`candle_restart.runtime.fsio`)."""
        return (json.dumps(self.to_json()) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> PruneRecord:
        """The prune record in ``path``: ``FileNotFoundError`` when missing, else `SearchRecordError`."""
        try:
            data = read_json(path)
        except JsonFileError as exc:
            raise SearchRecordError(exc.where, None, exc.problem) from None
        return cls.from_json(data, str(path))


def read_pruned(task_path: Path) -> PruneRecord | None:
    """The task's prune record (`PruneRecord.read` of its `PRUNED_FILE`); None when it has none."""
    try:
        return PruneRecord.read(Path(task_path) / PRUNED_FILE)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class TellRecord:
    """One line of the search log: an outcome told to the sampler."""

    trial: int
    state: TellState
    value: float | None
    asks: int
    metric: str | None = None  # the search's metric and direction, for readers of the log alone
    direction: str = "minimize"

    def to_json(self) -> JsonObject:
        return {
            "trial": self.trial,
            "state": self.state,
            "value": self.value,
            "asks": self.asks,
            "metric": self.metric,
            "direction": self.direction,
        }

    @classmethod
    def from_json(cls, data: JsonValue, where: str) -> TellRecord:
        check = Fields(where, SearchRecordError)
        data = check.obj(data)
        return cls(
            check.integer(data.get("trial"), "trial"),
            check.choice(data.get("state"), "state", TELL_STATES),
            check.opt_number(data.get("value"), "value"),
            check.integer(data.get("asks"), "asks"),
            check.opt_string(data.get("metric"), "metric"),
            check.choice(data.get("direction", "minimize"), "direction", ("minimize", "maximize")),
        )


def read_tells(path: Path) -> list[TellRecord]:
    """Every whole line of the log, in order ([] when there is none)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    tells = []
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = loads(line.decode())
        except (JsonError, UnicodeDecodeError):  # torn by a kill mid-append: never told
            continue
        tells.append(TellRecord.from_json(data, f"{path}:{number}"))
    return tells


def append_tell(path: Path, tell: TellRecord) -> None:
    """Append ``tell`` durably (one write, then fsync); a torn earlier line is ended first."""
    line = (json.dumps(tell.to_json(), allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
