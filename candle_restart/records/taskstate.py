"""``state.json``: how a task's last attempt stands or ended.  `TaskState` is its one reader and writer.

Written by the runner (``running`` at the start of an attempt; its end: ``completed``,
``preempted``, ``failed``, ``bad_input``) and by coordinators (``queued`` with a submission,
``failed`` when a submission failed, ``preempted`` for a runner that died without recording
its end), and by a search's driver (``pruned``, once the runner of a task it stopped early
has ended).  Keys (each optional but ``status``):

* ``status``; ``attempt``, ``generation``; ``reason`` (one line), ``cause`` (why the attempt
  ended: `candle_restart.coordinator.causes`), ``exit_code``, ``error_tail`` (the error's last lines, a list);
* ``started``, ``ended``, ``updated`` (ISO times), ``task_id``;
* who ran it: ``host``, ``pid``, ``pid_start`` (the process's start time), and Slurm's
  ``job_id``, ``array_job_id``, ``array_task_id``, ``restart_count`` (strings, from the environment);
* ``checkpoint``: a summary of the newest checkpoint's ``ckpt-info.json`` (an object, or null);
* ``result``: what the training returned, as JSON; ``result_note``: what was converted or dropped;
* ``metric``: `MetricSummary` (name, mode, best, best_epoch, final), or null.

Contract:

* `TaskState.from_json` accepts every ``state.json`` written so far; a value of the wrong
  type, or a ``status`` that is not one of `TaskStatusName`, is a `StateError` naming the
  file and the key in one line.  Keys it does not know are kept (``extras``) and written back;
* an attempt's end (``ended`` set) always writes ``exit_code``, ``reason``, ``cause``,
  ``error_tail``, ``checkpoint``, ``result`` and ``metric``, null or not; otherwise a key is
  written only when it has a value (as every version did);
* `TaskState.to_bytes` is strict JSON: a non-finite number (a CANDLE ``ckpt-info.json`` may hold
  one) is written as null.  The caller writes it atomically (`candle_restart.runtime.fsio`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonFileError, finite, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue

TASK_STATE_FILE = "state.json"
TaskStatusName = Literal["running", "queued", "completed", "preempted", "failed", "bad_input", "pruned"]
STATUSES: tuple[TaskStatusName, ...] = get_args(TaskStatusName)
MetricMode = Literal["min", "max"]
MODES: tuple[MetricMode, ...] = get_args(MetricMode)


class StateError(CkptError):
    """A ``state.json`` that cannot be read or holds a value of the wrong kind (one line)."""


@dataclass(frozen=True)
class MetricSummary:
    """The checkpointed metric of a run: its name and mode, the best value and its epoch (from the
    newest checkpoint), and the final value when the training's result holds it."""

    name: str
    mode: MetricMode | None = None
    best: float | None = None
    best_epoch: int | None = None
    final: float | None = None

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> MetricSummary:
        """The ``metric`` object of the ``state.json`` named ``source``; `StateError` if it is not one."""
        check = Fields(source, StateError)
        data = check.obj(data, "metric")
        return cls(
            check.string(data.get("name"), ("metric", "name")),
            None if data.get("mode") is None else check.choice(data.get("mode"), ("metric", "mode"), MODES),
            check.opt_number(data.get("best"), ("metric", "best")),
            check.opt_integer(data.get("best_epoch"), ("metric", "best_epoch")),
            check.opt_number(data.get("final"), ("metric", "final")),
        )

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "final": self.final,
        }


# Written, when set, in this order (an attempt's end as the runner writes it); unknown keys
# follow, then task_id and updated.
_INTS = ("attempt", "exit_code", "pid", "pid_start", "generation")
_STRS = (
    "reason", "cause", "started", "ended", "host", "job_id", "array_job_id", "array_task_id",
    "restart_count", "result_note", "task_id", "updated",
)  # fmt: skip
_END_KEYS = frozenset({"exit_code", "reason", "cause", "error_tail", "checkpoint", "result", "metric"})


@dataclass(frozen=True)
class TaskState:
    """One ``state.json`` (see the module docstring for each key)."""

    status: TaskStatusName
    attempt: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    cause: str | None = None
    error_tail: list[str] | str | None = None  # the error's last lines (a list; a string before)
    started: str | None = None
    ended: str | None = None
    host: str | None = None
    pid: int | None = None
    job_id: str | None = None
    array_job_id: str | None = None
    array_task_id: str | None = None
    restart_count: str | None = None
    pid_start: int | None = None
    generation: int | None = None
    checkpoint: JsonObject | None = None
    result: JsonValue = None
    result_note: str | None = None
    metric: MetricSummary | None = None
    extras: JsonObject = field(default_factory=dict)  # keys this version does not know, kept
    task_id: str | None = None
    updated: str | None = None

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> TaskState:
        """Validate a parsed ``state.json`` (``source`` names it in errors); `StateError` if it is not one."""
        check = Fields(source, StateError)
        data = check.obj(data)
        status = check.choice(data.get("status"), "status", STATUSES)
        raw_tail = data.get("error_tail")  # a list of lines; a string before
        tail = raw_tail if isinstance(raw_tail, str) else check.opt_strings(raw_tail, "error_tail")
        metric = data.get("metric")
        known = {f.name for f in fields(cls)} - {"extras"}
        values: dict[str, object] = {k: check.opt_integer(data.get(k), k) for k in _INTS}
        values.update({k: check.opt_string(data.get(k), k) for k in _STRS})
        return cls(
            status=status,
            checkpoint=check.opt_obj(data.get("checkpoint"), "checkpoint"),
            result=data.get("result"),
            error_tail=tail,
            metric=None if metric is None else MetricSummary.from_json(metric, source),
            extras={k: v for k, v in data.items() if k not in known},
            **values,  # type: ignore[arg-type]
        )

    def to_json(self) -> JsonObject:
        """The object written to ``state.json`` (see the module contract for which keys)."""
        ended = self.ended is not None
        record: JsonObject = {"status": self.status}
        for f in fields(self):
            if f.name in ("status", "extras", "task_id", "updated"):
                continue
            value = getattr(self, f.name)
            if value is not None or (ended and f.name in _END_KEYS):
                record[f.name] = value.to_json() if isinstance(value, MetricSummary) else value
        record.update(self.extras)
        for key in ("task_id", "updated"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        return record

    def to_bytes(self) -> bytes:
        """The content of ``state.json``: strict JSON, one key a line."""
        return (json.dumps(finite(self.to_json()), indent=1, allow_nan=False) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> TaskState:
        """The `TaskState` in ``path``.  ``FileNotFoundError`` when it is missing; `StateError`
        (``<path>: unreadable: <problem>`` or naming the key) when it cannot be read or is not one."""
        try:
            data = read_json(path)
        except JsonFileError as exc:
            raise StateError(exc.where, None, f"unreadable: {exc.problem}") from None
        return cls.from_json(data, str(path))

