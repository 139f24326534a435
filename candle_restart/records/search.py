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
from candle_restart.records.jsonio import JsonError, JsonFileError, loads, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue, is_int, is_number

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
        if not isinstance(data, dict):
            raise SearchRecordError(source, None, f"must hold a JSON object, got {type(data).__name__}")
        reason, epoch, time = data.get("reason"), data.get("epoch"), data.get("time")
        if not isinstance(reason, str):
            raise SearchRecordError(source, "reason", f"must be a string, got {reason!r}"[:300])
        if epoch is not None and not is_int(epoch):
            raise SearchRecordError(source, "epoch", f"must be an integer or null, got {epoch!r}"[:300])
        if not isinstance(time, str):
            raise SearchRecordError(source, "time", f"must be a string, got {time!r}"[:300])
        return cls(reason, epoch if isinstance(epoch, int) else None, time)

    def to_bytes(self) -> bytes:
        """The file's content; the caller writes it atomically (`candle_restart.runtime.fsio`)."""
        return (json.dumps({"reason": self.reason, "epoch": self.epoch, "time": self.time}) + "\n").encode()


def read_pruned(task_path: Path) -> PruneRecord | None:
    """The task's prune record; None when it has none."""
    path = Path(task_path) / PRUNED_FILE
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None
    except JsonFileError as exc:
        raise SearchRecordError(exc.where, None, exc.problem) from None
    return PruneRecord.from_json(data, str(path))


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
        if not isinstance(data, dict):
            raise SearchRecordError(where, None, "is not a JSON object")
        trial, state, value, asks = data.get("trial"), data.get("state"), data.get("value"), data.get("asks")
        if not is_int(trial) or not is_int(asks):
            raise SearchRecordError(where, "trial" if not is_int(trial) else "asks", "must be an integer")
        if state not in TELL_STATES:
            raise SearchRecordError(where, "state", f"must be one of {', '.join(TELL_STATES)}, got {state!r}"[:300])
        if value is not None and not is_number(value):
            raise SearchRecordError(where, "value", f"must be a number or null, got {value!r}"[:300])
        metric, direction = data.get("metric"), data.get("direction", "minimize")
        if metric is not None and not isinstance(metric, str):
            raise SearchRecordError(where, "metric", f"must be a string or null, got {metric!r}"[:300])
        if direction not in ("minimize", "maximize"):
            raise SearchRecordError(where, "direction", f"must be minimize or maximize, got {direction!r}"[:300])
        number = None if value is None else float(value)  # type: ignore[arg-type]
        return cls(int(trial), state, number, int(asks), metric, str(direction))  # type: ignore[arg-type]


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
