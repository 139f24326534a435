"""What classification says of one task: `TaskStatus` (with `StatusExtra`) and the states.

`candle_restart.coordinator.states` fills it from the task's files and the backend; the policy,
the views and the report read it.  ``status --json`` is its `TaskStatus.to_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal, get_args

from candle_restart.records.jsontypes import JsonObject, JsonValue
from candle_restart.records.taskstate import MetricSummary

State = Literal[
    "new", "queued", "running", "preempted", "failed", "cancelled", "completed", "corrupt", "pruned"
]
STATES: tuple[State, ...] = get_args(State)


@dataclass
class StatusExtra:
    """What classification found beyond the table's columns (``extra`` in ``status --json``:
    each key only when it was found, as below)."""

    ckpt_unreadable: str | None = None  # a transient error kept the newest checkpoint from being read
    ckpt_complete: bool | None = None  # the newest checkpoint ends an epoch (None: no checkpoint read)
    ckpt_key: str | None = None  # its `commit_key` (set with ``ckpt_complete``)
    intent_batch: str | None = None  # the batch of a submission intent without an outcome
    intent_host: str | None = None  # the host of the coordinator that recorded that intent (its ``by``)
    exit_host: str | None = None  # the host of the runner that recorded the latest exit (not in --json)
    runner_lost: bool = False  # the runner died without recording its end
    lost_cause: str | None = None  # why, as far as can be told (set with ``runner_lost``)
    node_local: str | None = None  # two tiers: the newest checkpoint is only on a node (`describe_local_tier`)
    error: str | None = None  # this task could not be read or acted on (one line); the pass went on

    def to_json(self, pending_intent: bool) -> JsonObject:
        record: JsonObject = {}
        if self.ckpt_unreadable is not None:
            record["ckpt_unreadable"] = self.ckpt_unreadable
        if self.ckpt_complete is not None:
            record["ckpt_complete"] = self.ckpt_complete
            record["ckpt_key"] = self.ckpt_key
        if pending_intent:
            record["intent_batch"] = self.intent_batch
            record["intent_host"] = self.intent_host
        if self.runner_lost:
            record["runner_lost"] = True
        if self.lost_cause is not None:
            record["lost_cause"] = self.lost_cause
        if self.node_local is not None:
            record["node_local"] = self.node_local
        if self.error is not None:
            record["error"] = self.error
        return record


@dataclass
class TaskStatus:
    """One task's classification, with what the status table and the policy need."""

    task_id: str
    state: State
    reason: str
    retryable: bool = True
    epoch: int | None = None
    epochs: int | None = None
    best_metric: float | None = None
    attempts: int = 0
    failures: int = 0
    preemptions: int = 0
    last_exit: int | None = None
    last_exit_time: str | None = None  # the runner's clock: shown, never compared with this host's
    exit_age: float | None = None  # a failed task: seconds since this host saw that end (`grace`); None: not measured
    job_id: str | None = None
    ckpt_time: str | None = None
    generation: int = 0
    pending_intent: int | None = None  # a generation whose submission outcome was never recorded
    intent_time: str | None = None  # its writer's clock: shown, never compared with this host's
    intent_age: float | None = None  # seconds it has been pending on this host's clock (`grace`); None: not measured
    submission: JsonObject | None = None
    params: JsonObject = field(default_factory=dict)  # the task's gParameters (task.json)
    result: JsonValue = None  # what the training returned (state.json's ``result``), when it completed
    metric: MetricSummary | None = None  # state.json's ``metric``
    retry_requested: str | None = None  # the time of a ``retry_requested`` not yet acted on
    cause: str | None = None  # why the latest attempt ended (`candle_restart.coordinator.causes`)
    causes: dict[str, int] = field(default_factory=dict)  # attempt ends per cause, since a retry request
    stalled: int = 0  # attempt ends in a row without a newer checkpoint
    extra: StatusExtra = field(default_factory=StatusExtra)

    def to_json(self) -> JsonObject:
        record: JsonObject = asdict(self)
        record["extra"] = self.extra.to_json(self.pending_intent is not None)
        return record

    def ckpt_age_seconds(self, now: datetime) -> float | None:
        """Seconds since the newest checkpoint; ``now`` naive (local) or aware alike.

        ``ckpt_time`` is CANDLE's local ``%Y-%m-%d %H:%M:%S`` (no offset): read as this machine's time.
        """
        if not self.ckpt_time:
            return None
        try:
            stamp = datetime.strptime(self.ckpt_time, "%Y-%m-%d %H:%M:%S").astimezone()
            return ((now if now.tzinfo else now.astimezone()) - stamp).total_seconds()
        except (ValueError, OverflowError, OSError):
            return None


def unreadable(task_id: str, problem: str) -> TaskStatus:
    """A task this pass could not read (or must not: `candle_restart.coordinator.resume.task_dirs`):
    ``failed``, not retryable, ``problem`` (one line) its reason and its ``extra.error``."""
    line = " ".join(problem.split())[:500]
    status = TaskStatus(task_id, "failed", line, retryable=False)
    status.extra.error = line
    return status
