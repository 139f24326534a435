"""Classifying a task into DESIGN's states from what is on disk and what the backend says.

`classify` reads ``task.json``, ``state.json``, ``journal.jsonl`` and the
``ckpt-info.json`` that ``ckpts/last`` names (checking recorded file sizes by
``stat``; no model file is ever read), then asks the backend about a live
submission when the files cannot tell.  It never writes.

States: ``new`` (never submitted), ``queued``, ``running``, ``preempted``
(ended early; resumable from ``ckpts/last``, or from scratch when it had no
checkpoint yet), ``failed`` (training error or bad input; ``retryable`` says
which), ``completed``, ``corrupt`` (checkpoints were committed but none
verifies), ``pruned`` (a search stopped it early: ``pruned.json``; its checkpoints kept).  A runner that died without recording its end (SIGKILL, a lost
node) counts as preempted: the work up to its last checkpoint is safe.

Counts come from the journal: failures are exits ``failed`` or ``bad_input`` and submissions
that failed or never started; a ``retry_requested`` event (``resume --retry-failed``) starts
the counts of failures and preemptions again, and until the next submission makes a failed
task retryable (`retry_requested` set).  ``params``, ``result`` and ``metric`` are read for
the views (``task.json``'s parameters, ``state.json``'s result and metric).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from candle_restart.ckpt import CkptInfo, CkptLayout, CorruptCheckpointError, find_restart
from candle_restart.ckpt.info import commit_key, finite_or_none
from candle_restart.ckpt.restore import verify_patiently
from candle_restart.coordinator.backend import Backend, FinalState, Submission
from candle_restart.coordinator.causes import (
    CAUSES,
    Ledger,
    cause_of_exit,
    cause_of_scheduler_state,
)
from candle_restart.coordinator.taskstatus import STATES, State, StatusExtra, TaskStatus, unreadable
from candle_restart.errors import CheckpointIOError, CkptError
from candle_restart.records.journal import (
    EXIT,
    RETRY_REQUESTED,
    RUNNER_LOST,
    START,
    SUBMIT_ABANDONED,
    SUBMIT_FAILED,
    SUBMIT_INTENT,
    SUBMITTED,
    EventKind,
)
from candle_restart.records.jsontypes import JsonObject
from candle_restart.records.localtier import describe_local_tier
from candle_restart.records.search import PruneRecord, read_pruned
from candle_restart.records.taskstate import TaskState
from candle_restart.task.process import oom_killed, pid_alive
from candle_restart.task.progress import UNKNOWN, progress_key
from candle_restart.task.taskdir import TaskDir

__all__ = ["STATES", "State", "StatusExtra", "TaskStatus", "classify", "unreadable"]

_PATIENCE = (0.1,)  # a scan of thousands of tasks retries a transient read error once
def _checkpoint(status: TaskStatus, task: TaskDir) -> str | None:
    """Fill the checkpoint fields from ``ckpts/last``; return why none verifies (None if fine or none exist)."""
    layout = CkptLayout.at(task.ckpts)
    last_epoch = layout.linked_epoch(layout.last)
    info: CkptInfo | None = None
    problem = "no checkpoint in epochs/ verifies"
    status.extra.node_local = describe_local_tier(layout.root)  # a drain not yet done
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
        status.extra.ckpt_unreadable = str(exc)
        return None
    status.epoch, status.epochs = info.epoch, info.epochs
    status.best_metric = finite_or_none(info.best_metric_last)  # CANDLE may write Infinity
    status.ckpt_time = info.timestamp
    status.extra.ckpt_complete = info.complete is True
    status.extra.ckpt_key = commit_key(info)
    return None


@dataclass
class _Intent:
    """A submission intent of the journal, and what became of it."""

    time: str | None
    batch: str | None
    host: str | None
    outcome: EventKind | None = None  # submitted, submit_failed, submit_abandoned; None: not recorded
    submission: JsonObject | None = None


def _journal_counts(status: TaskStatus, task: TaskDir) -> tuple[dict[int, _Intent], Ledger]:
    """Count attempts and outcomes; return submit intents by generation with their outcomes,
    and the ledger of attempt ends by cause."""
    intents: dict[int, _Intent] = {}
    started: set[int | None] = set()
    counted_from = 0  # submissions up to this generation were before the last retry request
    ledger = Ledger()
    for event in task.events():
        kind = event.kind
        if kind == START:
            status.attempts += 1
            started.add(event.generation)
        elif kind == EXIT:
            status.last_exit, status.last_exit_time = event.exit_code, event.time
            host = event.extras.get("host")
            status.extra.exit_host = host if isinstance(host, str) else None
            status.failures += event.status in ("failed", "bad_input")
            status.preemptions += event.status == "preempted"
            cause = cause_of_exit(event)
            if cause is None:
                ledger.completed()
            else:
                ledger.end(cause, event.ckpt)  # UNKNOWN when an older runner did not record it
        elif kind == RETRY_REQUESTED:  # the user's `resume --retry-failed`: budgets start again
            status.failures = status.preemptions = 0
            ledger.reset()
            status.retry_requested = str(event.time)
            counted_from = max(intents, default=0)
        elif kind == SUBMIT_INTENT and event.generation is not None:
            by = event.extras.get("by")
            host = by.get("host") if isinstance(by, dict) else None
            intents[event.generation] = _Intent(event.time, event.batch, host if isinstance(host, str) else None)
            status.retry_requested = None  # acted on
        elif kind in (SUBMITTED, SUBMIT_FAILED, SUBMIT_ABANDONED) and event.generation in intents:
            intent = intents[event.generation]
            intent.outcome, intent.submission = kind, event.submission
            status.failures += kind == SUBMIT_FAILED
        elif kind == RUNNER_LOST:
            status.preemptions += 1
            ledger.end(event.cause if event.cause in CAUSES else "node_fail", event.ckpt)
    status.generation = max(intents, default=0)
    # An older submission whose runner never started (it could not even launch) was a failure.
    status.failures += sum(
        1
        for g, i in intents.items()
        if counted_from < g < status.generation and i.outcome == SUBMITTED and g not in started
    )
    return intents, ledger


def classify(task: TaskDir, backends: dict[str, Backend]) -> TaskStatus:
    """The state of ``task`` (see the module docstring); never raises for a malformed task.

    A runner found dead is double-checked: if ``state.json`` changed meanwhile
    (it wrote its end and exited between the read and the pid check), the task
    is classified again from the new files.

    A file whose values are of a shape no reader foresaw makes this one task
    ``failed`` (not retryable) with the error as its reason; a file that cannot be read at all
    (a journal that is a directory, an I/O error) makes it `failed` with ``extra.error`` set
    (`unreadable`).  Neither ever stops a scan.
    """
    try:
        status = _classify_once(task, backends)
        if status.extra.runner_lost:
            state, _ = task.load_state()
            if state is None or state.status != "running":
                status = _classify_once(task, backends)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        problem = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return TaskStatus(task.task_id, "failed", f"{task.path}: unreadable: {problem}", retryable=False)
    except OSError as exc:
        where = exc.filename or task.path
        return unreadable(task.task_id, f"{where}: cannot be read: {exc.strerror or exc}")
    return status


def _classify_once(task: TaskDir, backends: dict[str, Backend]) -> TaskStatus:
    status = TaskStatus(task.task_id, "new", "never submitted")
    try:
        spec = task.load_spec()
    except CkptError as exc:
        status.state, status.reason, status.retryable = "failed", f"bad input: {exc}", False
        return status
    status.params = spec.params
    intents, ledger = _journal_counts(status, task)
    corrupt = _checkpoint(status, task)
    state, state_problem = task.load_state()
    latest = intents.get(status.generation)
    if latest is not None:
        status.submission = latest.submission
        if latest.outcome is None:
            status.pending_intent, status.intent_time = status.generation, latest.time
            status.extra.intent_batch, status.extra.intent_host = latest.batch, latest.host
    if state is not None:
        status.job_id, status.result, status.metric = state.job_id, state.result, state.metric
    runner = state.status if state else None

    if latest is not None and latest.outcome is None and runner in (None, "queued"):
        status.state, status.reason = (
            "queued",
            f"submission {status.generation} intended, outcome not recorded",
        )
    elif runner == "queued" or (
        runner is None and latest is not None and latest.outcome == SUBMITTED
    ):
        _from_backend(status, backends)
    elif runner == "running" and state is not None:
        _from_runner(status, state, backends)
    elif runner == "completed":
        status.state, status.reason = "completed", "the runner reported completion"
    elif runner == "preempted" and state is not None:
        status.state, status.reason = "preempted", _or(state.reason, "stopped on a signal")
    elif runner == "bad_input" and state is not None:
        status.state, status.retryable = "failed", False
        status.reason = f"bad input (exit 2), never retried: {state.reason}"
    elif runner == "failed" and state is not None:
        status.state, status.reason = "failed", _or(state.reason, "training error")
    elif runner == "pruned" and state is not None:  # recorded by the search once its runner stopped
        status.state, status.reason, status.retryable = "pruned", _or(state.reason, "pruned by a search"), False
    elif state_problem and state_problem != "no state.json":  # an unknown status, too
        status.state, status.reason, status.retryable = (
            "failed",
            f"{state_problem}; reported, not resubmitted",
            False,
        )
    if runner in ("preempted", "failed") and latest is not None and latest.outcome == SUBMITTED:
        _still_alive(status, backends)
    final = _final_state(status, backends) if status.state in ("preempted", "failed") else None
    if final and final.startswith("CANCELLED"):
        _cancelled_by_user(status, final)
    if status.extra.runner_lost and spec.command and status.extra.ckpt_key is None:  # its own files, or unknown
        unreadable = status.extra.ckpt_unreadable is not None
        status.extra.ckpt_key = UNKNOWN if unreadable else progress_key(task.ckpts, None, command=True)
    _attribute_causes(status, ledger, state, final)
    if corrupt and status.state in ("preempted", "failed"):
        status.state, status.reason = "corrupt", f"no checkpoint verifies: {corrupt}"
    _pruned(status, task)
    if status.retry_requested and status.state in ("preempted", "failed"):
        status.retryable = True  # the user fixed the cause (bad input too) and asked again
    else:
        status.retry_requested = None
    return status


def _pruned(status: TaskStatus, task: TaskDir) -> None:
    """A search stopped this task early (``pruned.json``, `candle_restart.records.search`): once its
    runner no longer runs (it stopped on the signal, or died), ``pruned``: terminal, never resubmitted."""
    try:
        record = read_pruned(task.path)
    except CkptError as exc:
        record = PruneRecord(f"pruned ({exc})", None, "")
    if record is None or status.state in ("new", "queued", "running", "completed"):
        return
    status.state, status.retryable, status.retry_requested = "pruned", False, None
    status.reason = f"pruned by the search: {record.reason}"
    status.extra.runner_lost = False


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
    status.extra.runner_lost = False


def _attribute_causes(
    status: TaskStatus, ledger: Ledger, state: TaskState | None, final: str | None
) -> None:
    """Fill ``cause``/``causes``/``stalled``; a lost runner's cause goes to ``extra.lost_cause``
    (journaled by the coordinator with ``runner_lost``).  The scheduler's final state names the
    cause where it knows it (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL); else the kernel's OOM record of
    the runner's pid (on this host); else a lost runner is ``node_fail``."""
    scheduler = cause_of_scheduler_state(final)
    if status.extra.runner_lost:
        cause = scheduler if scheduler in ("timeout", "oom", "node_fail", "preempted") else None
        if cause is None and state is not None and state.host == socket.gethostname():
            cause = "oom" if oom_killed(state.pid or 0, state.pid_start or None) else None
        status.extra.lost_cause = cause or "node_fail"
        ledger.end(status.extra.lost_cause, status.extra.ckpt_key)
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


def _or(text: str | None, default: str) -> str:
    return default if text is None else text


def _from_runner(status: TaskStatus, state: TaskState, backends: dict[str, Backend]) -> None:
    live = pid_alive(str(state.host), state.pid or 0, state.pid_start)
    submission, backend = _submission(status, backends)
    scheduler = None  # asked at most once, and only when the runner's own pid cannot tell
    if live == "unknown":  # the runner is on another host: the scheduler knows better
        live = scheduler = backend.liveness(submission) if submission and backend else "unknown"
    if live in ("running", "pending", "unknown"):
        where = f"pid {state.pid} on {state.host}"
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
    status.reason = f"runner pid {state.pid} on {state.host} died without recording an exit"
    status.extra.runner_lost = True
