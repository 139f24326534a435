"""Classifying a task into DESIGN's states from what is on disk and what the backend says.

`classify` is three steps: `gather` reads ``task.json``, ``state.json``, ``journal.jsonl`` and
the ``ckpt-info.json`` that ``ckpts/last`` names (checking recorded file sizes by ``stat``; no
model file is ever read), then asks the runner's pid, the backend and the kernel what the files
leave open (`candle_restart.coordinator.facts.TaskFacts`); the pure
`candle_restart.coordinator.rules.classify` decides the state and the causes; `status_of`
assembles the `TaskStatus`.  It never writes.

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
from dataclasses import replace
from typing import Any

from candle_restart.ckpt import CkptInfo, CkptLayout, CorruptCheckpointError, find_restart
from candle_restart.ckpt.info import commit_key, finite_or_none
from candle_restart.ckpt.restore import verify_patiently
from candle_restart.coordinator import rules
from candle_restart.coordinator.backend import Backend, FinalState
from candle_restart.coordinator.facts import CkptFacts, Probes, TaskFacts, summarize
from candle_restart.coordinator.taskstatus import STATES, State, StatusExtra, TaskStatus, unreadable
from candle_restart.errors import CheckpointIOError, CkptError
from candle_restart.records.localtier import describe_local_tier, progress_of
from candle_restart.records.search import PruneRecord, read_pruned
from candle_restart.task.process import oom_killed, pid_alive
from candle_restart.task.progress import progress_key
from candle_restart.task.taskdir import TaskDir

__all__ = ["STATES", "State", "StatusExtra", "TaskStatus", "classify", "gather", "status_of", "unreadable"]

_PATIENCE = (0.1,)  # a scan of thousands of tasks retries a transient read error once


def classify(task: TaskDir, backends: dict[str, Backend]) -> TaskStatus:
    """The state of ``task`` (see the module docstring); never raises for a malformed task.

    A runner found dead is double-checked: if ``state.json`` changed meanwhile
    (it wrote its end and exited between the read and the pid check), the task
    is classified again from the new files.

    Only the gathering can meet bad files, and only record and checkpoint errors are caught
    there: one the records did not turn into a fact makes this one task ``failed`` (not
    retryable) with the error as its reason; a file that cannot be read at all (a journal that
    is a directory, an I/O error) makes it `failed` with ``extra.error`` set (`unreadable`).
    Neither ever stops a scan.  A coding error is not caught: it is a bug, not a task's state.
    """
    try:
        facts = gather(task, backends)
        status = status_of(facts, rules.classify(facts))
        if status.extra.runner_lost:
            state, _ = task.load_state()
            if state is None or state.status != "running":
                facts = gather(task, backends)
                status = status_of(facts, rules.classify(facts))
    except CkptError as exc:
        problem = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return TaskStatus(task.task_id, "failed", f"{task.path}: unreadable: {problem}", retryable=False)
    except OSError as exc:
        where = exc.filename or task.path
        return unreadable(task.task_id, f"{where}: cannot be read: {exc.strerror or exc}")
    return status


def gather(task: TaskDir, backends: dict[str, Backend]) -> TaskFacts:
    """What ``task``'s files say, then the answers to the questions they leave open (`rules`'
    ``asks_*``, in order: the runner's pid, the backend's liveness, its final state, the kernel's
    OOM record, a lost command's files); ``pruned.json`` last, so a search's stop is seen once its
    runner is.  Raises the records' and the checkpoint's errors, and OSError."""
    try:
        spec = task.load_spec()
    except CkptError as exc:
        return TaskFacts(task.task_id, bad_spec=str(exc))
    journal = summarize(task.events())
    ckpt = _checkpoint(task)
    state, state_problem = task.load_state()
    facts = TaskFacts(task.task_id, spec, None, journal, ckpt, state, state_problem)
    if state is not None and rules.asks_runner(facts):
        facts = _told(facts, runner=pid_alive(str(state.host), state.pid or 0, state.pid_start))
    submission = rules.submission_of(facts)
    backend = backends.get(submission.backend) if submission is not None else None
    if submission is not None and backend is not None and rules.asks_scheduler(facts):
        facts = _told(facts, scheduler=backend.liveness(submission))
    if submission is not None and isinstance(backend, FinalState) and rules.asks_final_state(facts):
        facts = _told(facts, final=backend.final_state(submission))
    if state is not None and rules.asks_oom(facts, socket.gethostname()):
        facts = _told(facts, oom=oom_killed(state.pid or 0, state.pid_start or None))
    if rules.asks_progress(facts):
        facts = _told(facts, progress=progress_key(task.ckpts, None, command=True))
    return _with(facts, facts.probes, _pruned(task))


def _told(facts: TaskFacts, **answers: Any) -> TaskFacts:  # Any: what `replace` takes
    """``facts`` with more of its probes answered."""
    return _with(facts, replace(facts.probes, **answers), facts.pruned)


def _with(facts: TaskFacts, probes: Probes, pruned: PruneRecord | None) -> TaskFacts:
    """``facts`` with these ``probes`` and ``pruned`` (built directly: a scan builds thousands)."""
    f = facts
    return TaskFacts(f.task_id, f.spec, f.bad_spec, f.journal, f.ckpt, f.state, f.state_problem, pruned, probes)


def _pruned(task: TaskDir) -> PruneRecord | None:
    """``pruned.json`` (`candle_restart.records.search`); a malformed one still says pruned."""
    try:
        return read_pruned(task.path)
    except CkptError as exc:
        return PruneRecord(f"pruned ({exc})", None, "")


def _checkpoint(task: TaskDir) -> CkptFacts:
    """The newest checkpoint that verifies, from ``ckpts/last`` or else ``epochs/``; or why none does."""
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
                return CkptFacts(node_local=describe_local_tier(layout.root))  # nothing was ever committed
            found = find_restart(layout, False, lambda _m: None, patience=_PATIENCE)
            if found is None:
                return CkptFacts(problem=problem, node_local=describe_local_tier(layout.root))
            info, last_epoch = found.info, found.epoch
    except (CheckpointIOError, OSError) as exc:  # transient: never taken for corruption
        return CkptFacts(unreadable=str(exc), node_local=describe_local_tier(layout.root))
    newest = None if last_epoch is None else progress_of(last_epoch, info)
    return CkptFacts(
        info.epoch,
        info.epochs,
        finite_or_none(info.best_metric_last),  # CANDLE may write Infinity
        info.timestamp,
        info.complete is True,
        commit_key(info),
        node_local=describe_local_tier(layout.root, newest),  # a drain not yet done
    )


def status_of(facts: TaskFacts, verdict: rules.Verdict) -> TaskStatus:
    """The `TaskStatus` of ``facts`` classified as ``verdict``."""
    journal, ckpt, state = facts.journal, facts.ckpt, facts.state
    latest = journal.latest
    pending = latest is not None and latest.outcome is None
    extra = StatusExtra(
        ckpt_unreadable=ckpt.unreadable,
        ckpt_complete=ckpt.complete,
        ckpt_key=verdict.ckpt_key,
        intent_batch=latest.batch if pending and latest else None,
        intent_host=latest.host if pending and latest else None,
        exit_host=journal.exit_host,
        runner_lost=verdict.runner_lost,
        lost_cause=verdict.lost_cause,
        node_local=ckpt.node_local,
    )
    return TaskStatus(
        facts.task_id,
        verdict.state,
        verdict.reason,
        retryable=verdict.retryable,
        epoch=ckpt.epoch,
        epochs=ckpt.epochs,
        best_metric=ckpt.best_metric,
        attempts=journal.attempts,
        failures=journal.failures + verdict.failed_submission,
        preemptions=journal.preemptions,
        last_exit=journal.last_exit,
        last_exit_time=journal.last_exit_time,
        job_id=state.job_id if state else None,
        ckpt_time=ckpt.time,
        generation=journal.generation,
        pending_intent=journal.generation if pending else None,
        intent_time=latest.time if pending and latest else None,
        submission=latest.submission if latest else None,
        params=facts.spec.params if facts.spec else {},
        result=state.result if state else None,
        metric=state.metric if state else None,
        retry_requested=verdict.retry_requested,
        cause=verdict.cause,
        causes=verdict.causes,
        stalled=verdict.stalled,
        extra=extra,
    )
