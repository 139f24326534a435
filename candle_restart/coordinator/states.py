"""Classifying a task into DESIGN's states from what is on disk and what the backend says.

`classify` reads ``task.json``, ``state.json``, ``journal.jsonl`` and the
``ckpt-info.json`` that ``ckpts/last`` names (checking recorded file sizes by
``stat``; no model file is ever read), then asks the backend about a live
submission when the files cannot tell.  It never writes.

States: ``new`` (never submitted), ``queued``, ``running``, ``preempted``
(ended early; resumable from ``ckpts/last``, or from scratch when it had no
checkpoint yet), ``failed`` (training error or bad input; ``retryable`` says
which), ``completed``, ``corrupt`` (checkpoints were committed but none
verifies).  A runner that died without recording its end (SIGKILL, a lost
node) counts as preempted: the work up to its last checkpoint is safe.

Counts come from the journal: failures are exits ``failed`` or ``bad_input`` and submissions
that failed or never started; a ``retry_requested`` event (``resume --retry-failed``) starts
the counts of failures and preemptions again, and until the next submission makes a failed
task retryable (`retry_requested` set).  ``params``, ``result`` and ``metric`` are read for
the views (``task.json``'s parameters, ``state.json``'s result and metric).
"""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from candle_restart.ckpt import CkptInfo, CkptLayout, CorruptCheckpointError, find_restart
from candle_restart.ckpt.info import commit_key, finite_or_none
from candle_restart.ckpt.restore import verify_patiently
from candle_restart.coordinator.backend import Backend, FinalState, Submission
from candle_restart.coordinator.causes import (
    CAUSES,
    UNKNOWN,
    Ledger,
    cause_of_exit,
    cause_of_scheduler_state,
)
from candle_restart.errors import CheckpointIOError, CkptError
from candle_restart.task.process import oom_killed, pid_alive
from candle_restart.task.taskdir import TaskDir

_PATIENCE = (0.1,)  # a scan of thousands of tasks retries a transient read error once
STATES = ("new", "queued", "running", "preempted", "failed", "cancelled", "completed", "corrupt")


@dataclass
class TaskStatus:
    """One task's classification, with what the status table and the policy need."""

    task_id: str
    state: str
    reason: str
    retryable: bool = True
    epoch: int | None = None
    epochs: int | None = None
    best_metric: float | None = None
    attempts: int = 0
    failures: int = 0
    preemptions: int = 0
    last_exit: int | None = None
    last_exit_time: str | None = None
    job_id: str | None = None
    ckpt_time: str | None = None
    generation: int = 0
    pending_intent: int | None = None  # a generation whose submission outcome was never recorded
    intent_time: str | None = None
    submission: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)  # the task's gParameters (task.json)
    result: Any = None  # what the training returned (state.json's ``result``), when it completed
    metric: dict[str, Any] | None = None  # state.json's ``metric``: name, mode, best, best_epoch, final
    retry_requested: str | None = None  # the time of a ``retry_requested`` not yet acted on
    cause: str | None = None  # why the latest attempt ended (`candle_restart.coordinator.causes`)
    causes: dict[str, int] = field(default_factory=dict)  # attempt ends per cause, since a retry request
    stalled: int = 0  # attempt ends in a row without a newer checkpoint
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

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


def _checkpoint(status: TaskStatus, task: TaskDir) -> str | None:
    """Fill the checkpoint fields from ``ckpts/last``; return why none verifies (None if fine or none exist)."""
    layout = CkptLayout.at(task.ckpts)
    last_epoch = layout.linked_epoch(layout.last)
    info: CkptInfo | None = None
    problem = "no checkpoint in epochs/ verifies"
    try:
        if last_epoch is not None:
            try:
                info = verify_patiently(layout.epoch_dir(last_epoch), False, lambda _m: None, _PATIENCE)
            except CorruptCheckpointError as exc:
                problem = str(exc)
        if info is None:
            if last_epoch is None and not layout.list_epochs():
                return None  # nothing was ever committed
            found = find_restart(layout, False, lambda _m: None, patience=_PATIENCE)
            if found is None:
                return problem
            info = found.info
    except (CheckpointIOError, OSError) as exc:  # transient: never taken for corruption
        status.extra["ckpt_unreadable"] = str(exc)
        return None
    status.epoch, status.epochs = info.epoch, info.epochs
    status.best_metric = finite_or_none(info.best_metric_last)  # CANDLE may write Infinity
    status.ckpt_time = info.timestamp
    status.extra["ckpt_complete"] = info.complete is True
    status.extra["ckpt_key"] = commit_key(info)
    return None


def _journal_counts(status: TaskStatus, task: TaskDir) -> tuple[dict[int, dict[str, Any]], Ledger]:
    """Count attempts and outcomes; return submit intents by generation with their outcomes,
    and the ledger of attempt ends by cause."""
    intents: dict[int, dict[str, Any]] = {}
    started: set[Any] = set()
    counted_from = 0  # submissions up to this generation were before the last retry request
    ledger = Ledger()
    for event in task.read_journal():
        kind = event.get("event")
        if kind == "start":
            status.attempts += 1
            started.add(event.get("generation"))
        elif kind == "exit":
            status.last_exit, status.last_exit_time = event.get("exit_code"), event.get("time")
            status.failures += event.get("status") in ("failed", "bad_input")
            status.preemptions += event.get("status") == "preempted"
            cause = cause_of_exit(event)
            if cause is None:
                ledger.completed()
            else:
                ledger.end(cause, event.get("ckpt", UNKNOWN))
        elif kind == "retry_requested":  # the user's `resume --retry-failed`: budgets start again
            status.failures = status.preemptions = 0
            ledger.reset()
            status.retry_requested = str(event.get("time"))
            counted_from = max(intents, default=0)
        elif kind == "submit_intent" and isinstance(event.get("generation"), int):
            intents[event["generation"]] = {"time": event.get("time"), "batch": event.get("batch")}
            status.retry_requested = None  # acted on
        elif (
            kind in ("submitted", "submit_failed", "submit_abandoned") and event.get("generation") in intents
        ):
            intents[event["generation"]]["outcome"] = kind
            status.failures += kind == "submit_failed"
            intents[event["generation"]]["submission"] = event.get("submission")
        elif kind == "runner_lost":
            status.preemptions += 1
            lost = event.get("cause")
            ledger.end(lost if lost in CAUSES else "node_fail", event.get("ckpt", UNKNOWN))
    status.generation = max(intents, default=0)
    # An older submission whose runner never started (it could not even launch) was a failure.
    status.failures += sum(
        1
        for g, i in intents.items()
        if counted_from < g < status.generation and i.get("outcome") == "submitted" and g not in started
    )
    return intents, ledger


def classify(task: TaskDir, backends: dict[str, Backend]) -> TaskStatus:
    """The state of ``task`` (see the module docstring); never raises for a malformed task.

    A runner found dead is double-checked: if ``state.json`` changed meanwhile
    (it wrote its end and exited between the read and the pid check), the task
    is classified again from the new files.

    A file whose values are of a shape no reader foresaw makes this one task
    ``failed`` (not retryable) with the error as its reason; it never stops a scan.
    """
    try:
        status = _classify_once(task, backends)
        if status.extra.get("runner_lost"):
            state, _ = task.read_state()
            if state is None or state.get("status") != "running":
                status = _classify_once(task, backends)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        problem = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return TaskStatus(task.task_id, "failed", f"{task.path}: unreadable: {problem}", retryable=False)
    return status


def _classify_once(task: TaskDir, backends: dict[str, Backend]) -> TaskStatus:
    status = TaskStatus(task.task_id, "new", "never submitted")
    try:
        status.params = task.load_spec().params
    except CkptError as exc:
        status.state, status.reason, status.retryable = "failed", f"bad input: {exc}", False
        return status
    intents, ledger = _journal_counts(status, task)
    corrupt = _checkpoint(status, task)
    state, state_problem = task.read_state()
    latest = intents.get(status.generation)
    if latest is not None:
        status.submission = latest.get("submission")
        if "outcome" not in latest:
            status.pending_intent, status.intent_time = status.generation, latest.get("time")
            status.extra["intent_batch"] = latest.get("batch")
    if state is not None:
        status.job_id = state.get("job_id")
        status.result = state.get("result")
        metric = state.get("metric")
        status.metric = metric if isinstance(metric, dict) else None
    runner = state.get("status") if state else None

    if latest is not None and "outcome" not in latest and runner in (None, "queued"):
        status.state, status.reason = (
            "queued",
            f"submission {status.generation} intended, outcome not recorded",
        )
    elif runner == "queued" or (
        runner is None and latest is not None and latest.get("outcome") == "submitted"
    ):
        _from_backend(status, backends)
    elif runner == "running" and state is not None:
        _from_runner(status, state, backends)
    elif runner == "completed":
        status.state, status.reason = "completed", "the runner reported completion"
    elif runner == "preempted":
        status.state, status.reason = (
            "preempted",
            str(state.get("reason", "stopped on a signal")) if state else "",
        )
    elif runner == "bad_input":
        status.state, status.retryable = "failed", False
        status.reason = f"bad input (exit 2), never retried: {state.get('reason') if state else ''}"
    elif runner == "failed":
        status.state, status.reason = "failed", str(state.get("reason", "training error")) if state else ""
    elif state_problem and state_problem != "no state.json":
        status.state, status.reason, status.retryable = (
            "failed",
            f"{state_problem}; reported, not resubmitted",
            False,
        )
    elif runner is not None:
        status.state, status.retryable = "failed", False
        status.reason = f"{task.state_file}: status: unknown value {runner!r}; reported, not resubmitted"
    if runner in ("preempted", "failed") and latest is not None and latest.get("outcome") == "submitted":
        _still_alive(status, backends)
    final = _final_state(status, backends) if status.state in ("preempted", "failed") else None
    if final and final.startswith("CANCELLED"):
        _cancelled_by_user(status, final)
    _attribute_causes(status, ledger, state, final)
    if corrupt and status.state in ("preempted", "failed"):
        status.state, status.reason = "corrupt", f"no checkpoint verifies: {corrupt}"
    if status.retry_requested and status.state in ("preempted", "failed"):
        status.retryable = True  # the user fixed the cause (bad input too) and asked again
    else:
        status.retry_requested = None
    return status


def _submission(status: TaskStatus, backends: dict[str, Backend]) -> tuple[Submission | None, Backend | None]:
    """The latest recorded submission and the backend that made it (None for either when unknown)."""
    if not status.submission:
        return None, None
    submission = Submission.from_json(status.submission)
    return submission, backends.get(submission.backend)


def _final_state(status: TaskStatus, backends: dict[str, Backend]) -> str | None:
    """The scheduler's final state of the latest submission (None: alive, unknown, or no such backend)."""
    submission, backend = _submission(status, backends)
    return backend.final_state(submission) if submission and isinstance(backend, FinalState) else None


def _cancelled_by_user(status: TaskStatus, final: str) -> None:
    """A scheduler that says the job was cancelled (scancel) overrides the runner's "preempted"."""
    job = (status.submission or {}).get("job_id")
    status.state, status.retryable = "cancelled", False
    status.reason = f"job {job} was cancelled ({final}); not resubmitted"
    status.extra.pop("runner_lost", None)


def _attribute_causes(
    status: TaskStatus, ledger: Ledger, state: dict[str, Any] | None, final: str | None
) -> None:
    """Fill ``cause``/``causes``/``stalled``; a lost runner's cause goes to ``extra["lost_cause"]``
    (journaled by the coordinator with ``runner_lost``).  The scheduler's final state names the
    cause where it knows it (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL); else the kernel's OOM record of
    the runner's pid (on this host); else a lost runner is ``node_fail``."""
    scheduler = cause_of_scheduler_state(final)
    if status.extra.get("runner_lost"):
        cause = scheduler if scheduler in ("timeout", "oom", "node_fail", "preempted") else None
        if cause is None and state is not None and state.get("host") == socket.gethostname():
            start = state.get("pid_start")
            cause = "oom" if oom_killed(_int(state.get("pid")), _int(start) or None) else None
        status.extra["lost_cause"] = cause or "node_fail"
        ledger.end(status.extra["lost_cause"], status.extra.get("ckpt_key"))
    elif scheduler in ("timeout", "oom", "node_fail", "cancelled") and status.state in (
        "preempted",
        "failed",
        "cancelled",
    ):
        ledger.reclassify_last(scheduler)
    status.cause, status.causes, status.stalled = ledger.last_cause, dict(ledger.counts), ledger.stalled


def _still_alive(status: TaskStatus, backends: dict[str, Backend]) -> None:
    """A runner that stopped while its submission lives on (Parsl retrying, Slurm requeued): queued."""
    submission, backend = _submission(status, backends)
    if submission is None or backend is None:
        return
    live = backend.liveness(submission)
    if live in ("pending", "running") or (live == "unknown" and submission.backend != "local"):
        status.state = "queued"
        status.reason = (
            f"{status.reason}; submission {submission.generation} is {live}: its scheduler reruns it"
        )


def _from_backend(status: TaskStatus, backends: dict[str, Backend]) -> None:
    submission, backend = _submission(status, backends)
    if submission is None:
        status.state, status.reason = "failed", "state.json says queued but the journal has no submission"
        return
    live = backend.liveness(submission) if backend else "unknown"
    if live in ("pending", "unknown"):
        status.state, status.reason = "queued", f"submission {submission.generation} is {live}"
    elif live == "running":
        status.state, status.reason = "running", f"submission {submission.generation} is starting"
    else:  # counts as a failure, so a task whose runner cannot even start stops at max_failures
        status.state, status.reason = (
            "failed",
            f"submission {submission.generation} ended before its runner started",
        )
        status.failures += 1


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _from_runner(status: TaskStatus, state: dict[str, Any], backends: dict[str, Backend]) -> None:
    start = state.get("pid_start")
    live = pid_alive(
        str(state.get("host")), _int(state.get("pid")), start if isinstance(start, int) else None
    )
    submission, backend = _submission(status, backends)
    scheduler = None  # asked at most once, and only when the runner's own pid cannot tell
    if live == "unknown":  # the runner is on another host: the scheduler knows better
        live = scheduler = backend.liveness(submission) if submission and backend else "unknown"
    if live in ("running", "pending", "unknown"):
        where = f"pid {state.get('pid')} on {state.get('host')}"
        status.state, status.reason = (
            "running",
            f"runner {where}" + (" (liveness unknown)" if live == "unknown" else ""),
        )
        return
    if scheduler is None and submission and backend:
        scheduler = backend.liveness(submission)
    if submission is not None and scheduler in ("pending", "running"):  # requeued by its scheduler
        status.state, status.reason = (
            "queued",
            f"runner gone; submission {submission.generation} is {scheduler} again",
        )
        return
    status.state = "preempted"
    status.reason = f"runner pid {state.get('pid')} on {state.get('host')} died without recording an exit"
    status.extra["runner_lost"] = True
