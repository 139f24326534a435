"""Scan a run root, decide per task, and resubmit: exactly once, under each task's lock.

`scan` classifies every task directory (in parallel threads: the work is
file reads).  `resume` then, for each task whose decision needs a write,
takes the task's lock, classifies it again (another coordinator may have
acted meanwhile), decides, and acts:

* submit: claim generation g+1 (an ``O_EXCL`` file: one claimant ever wins
  it, see `candle_restart.coordinator.lock`), journal ``submit_intent``,
  state ``queued``, check the lock is still ours, call the backend, journal
  ``submitted`` (or ``submit_failed``).  A coordinator that lost its lock
  (paused past its lease) or its claim stands down.  A coordinator
  killed between intent and outcome leaves an intent that the next one
  reconciles: a runner ``start`` of that generation proves it was submitted;
  otherwise, after the grace period, it is journaled ``submit_abandoned`` and
  a new generation is submitted (the runner of an abandoned generation that
  starts late sees the newer one and stands down);
* record_lost: a runner that died without recording its end is journaled
  ``runner_lost`` and its state set to preempted;
* corrupt with ``restart_corrupt``: ``ckpts/`` is renamed aside, never deleted.

Nothing here rewrites or deletes a checkpoint.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from candle_restart.ckpt.envvars import TEST_PAUSE_ENV
from candle_restart.ckpt.lease import default_lease_seconds
from candle_restart.coordinator.backend import Backend, BatchSubmit, Reconcile, Submission
from candle_restart.coordinator.lock import (
    LockBusy,
    TaskLock,
    claim_generation,
    claimed_generations,
    task_lock,
)
from candle_restart.coordinator.policy import Decision, Policy, decide
from candle_restart.coordinator.states import TaskStatus, classify
from candle_restart.errors import CkptError
from candle_restart.records.journal import (
    CKPTS_SET_ASIDE,
    RUNNER_LOST,
    START,
    SUBMIT_ABANDONED,
    SUBMIT_FAILED,
    SUBMIT_INTENT,
    SUBMITTED,
    JournalEvent,
)
from candle_restart.records.taskstate import TaskState
from candle_restart.task.process import fork_safe
from candle_restart.task.taskdir import TASK_FILE, TaskDir

Log = Callable[[str], None]
# Test-only fail-point: a coordinator whose environment names one of these points stops itself
# (SIGSTOP) there, as a suspended job or a paused VM would, so a test can let its lease run out.
PAUSE_ENV = TEST_PAUSE_ENV
PAUSE_POINTS = ("decided", "intended")


class SubmitMany(Protocol):
    """`BatchSubmit.submit_many`, bound."""

    def __call__(self, items: Sequence[tuple[TaskDir, int]], batch: str) -> list[Submission]: ...


def _pause_point(name: str) -> None:
    if os.environ.get(PAUSE_ENV) == name:
        os.kill(os.getpid(), signal.SIGSTOP)


class RunRootError(CkptError):
    """The run root does not exist or is not a directory."""


@dataclass
class ResumeOutcome:
    """What one pass of `resume` did with one task: its classification, the decision, whether it acted."""

    status: TaskStatus
    decision: Decision
    acted: bool = False

    @property
    def final(self) -> bool:
        """Nothing more will happen to this task: it completed, was cancelled, or was given up on."""
        if self.decision.action in ("give_up", "report"):
            return True
        return self.decision.action == "none" and self.status.state in ("completed", "cancelled")


def task_dirs(run_root: str | os.PathLike[str], only: set[str] | None = None) -> list[TaskDir]:
    """Every directory directly under ``run_root`` that holds a ``task.json`` (and whose name is in
    ``only``, when given), sorted by name."""
    root = Path(run_root)
    if not root.is_dir():
        raise RunRootError(str(root), None, "is not a directory")
    with os.scandir(root) as entries:
        names = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())
    if only is not None:
        names = [n for n in names if n in only]
    return [TaskDir(root / name) for name in names if (root / name / TASK_FILE).exists()]


_WORKER_BACKENDS: dict[str, Backend] = {}
_PARALLEL_FROM = 2000  # below this, starting worker processes costs more than it saves


def _classify_paths(paths: list[str]) -> list[TaskStatus]:
    return [classify(TaskDir(p), _WORKER_BACKENDS) for p in paths]


def scan(
    run_root: str | os.PathLike[str],
    backends: dict[str, Backend],
    workers: int | None = None,
    only: set[str] | None = None,
) -> list[TaskStatus]:
    """Classify every task under ``run_root`` (see `classify`), in task-id order.

    Classification is parsing-bound, so large run roots are split across
    forked worker processes (one per core by default), not threads.
    """
    tasks = task_dirs(run_root, only)
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(tasks) < _PARALLEL_FROM or "fork" not in mp.get_all_start_methods():
        return [classify(t, backends) for t in tasks]
    _WORKER_BACKENDS.clear()
    _WORKER_BACKENDS.update(backends)  # inherited by the forked workers
    size = -(-len(tasks) // (workers * 4))
    chunks = [[str(t.path) for t in tasks[i : i + size]] for i in range(0, len(tasks), size)]
    with fork_safe(), ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        return [status for chunk in pool.map(_classify_paths, chunks) for status in chunk]


def _intend(
    task: TaskDir,
    lock: TaskLock,
    status: TaskStatus,
    decision: Decision,
    backend: Backend,
    batch: str | None,
    log: Log,
) -> int:
    """Claim the next generation and record the intent to submit it (and set corrupt checkpoints aside).

    Raises `GenerationTaken` or `LeaseLost` (nothing written) when another coordinator got there first.
    """
    generation = max(status.generation, claimed_generations(task)) + 1
    lock.check()
    claim_generation(task, generation)
    if status.state == "corrupt":
        aside = task.ckpts.with_name(f"ckpts.corrupt-{datetime.now():%Y%m%d-%H%M%S}")
        os.rename(task.ckpts, aside)
        task.append_journal(JournalEvent(CKPTS_SET_ASIDE, extras={"to": aside.name}))
        log(f"{task.task_id}: corrupt checkpoints set aside as {aside.name}")
    task.append_journal(
        JournalEvent(
            SUBMIT_INTENT,
            generation=generation,
            reason=decision.reason,
            batch=batch,
            extras={"backend": backend.name, "by": {"host": os.uname().nodename, "pid": os.getpid()}},
        )
    )
    task.write_state(TaskState("queued", generation=generation, reason=decision.reason))
    return generation


def _record(
    task: TaskDir, generation: int, submission: Submission | None, error: str | None, log: Log
) -> None:
    """Record the backend's answer to an intent."""
    if submission is None:
        task.append_journal(JournalEvent(SUBMIT_FAILED, generation=generation, extras={"error": error}))
        task.write_state(TaskState("failed", generation=generation, reason=f"submission failed: {error}"))
        log(f"{task.task_id}: submission {generation} failed: {error}")
        return
    task.append_journal(JournalEvent(SUBMITTED, generation=generation, submission=submission.to_json()))
    data = submission.data
    handle = data.get("job_id") or (
        f"task {data['parsl_task']}" if data.get("parsl_task") is not None else f"pid {data.get('pid', '?')}"
    )
    log(f"{task.task_id}: submitted generation {generation} ({submission.backend} {handle})")


def _reconcile(task: TaskDir, status: TaskStatus, backend: Backend, log: Log) -> None:
    generation = status.pending_intent
    assert generation is not None
    found = (
        backend.find(task, generation, status.extra.intent_batch)
        if isinstance(backend, Reconcile)
        else None
    )
    if found is not None:
        task.append_journal(
            JournalEvent(SUBMITTED, generation=generation, submission=found.to_json(), extras={"reconciled": True})
        )
        log(f"{task.task_id}: submission {generation} was made ({found.data.get('job_id')}); recorded it")
        return
    started = any(e.kind == START and e.generation == generation for e in task.events())
    if started:
        task.append_journal(JournalEvent(SUBMITTED, generation=generation, extras={"reconciled": True}))
        log(f"{task.task_id}: submission {generation} had started; recorded it")
    else:
        task.append_journal(JournalEvent(SUBMIT_ABANDONED, generation=generation))
        log(f"{task.task_id}: submission {generation} never started; abandoned")


@dataclass
class _Act:
    outcome: ResumeOutcome
    generation: int | None = None  # an intent recorded, waiting for a batch submission


def _act(
    task: TaskDir,
    lock: TaskLock,
    backend: Backend,
    backends: dict[str, Backend],
    policy: Policy,
    log: Log,
    batch: str | None,
) -> _Act:
    """Under the task's lock: classify afresh, decide, act; repeat while an action leads to another.

    With ``batch`` set the submission itself is deferred: the intent is recorded
    here and the caller submits every deferred task as one array.
    """
    for _ in range(3):
        status = classify(task, backends)
        decision = decide(status, policy)
        if decision.action == "submit":
            _pause_point("decided")
            try:
                generation = _intend(task, lock, status, decision, backend, batch, log)
                _pause_point("intended")
                if batch is None:
                    lock.check()  # a coordinator paused past its lease never submits
            except CkptError as exc:  # GenerationTaken, LeaseLost: another coordinator acts for this task
                log(f"{task.task_id}: standing down: {exc}")
                return _Act(ResumeOutcome(status, Decision("none", f"standing down: {exc}")))
            if batch is not None:
                return _Act(ResumeOutcome(status, decision, acted=True), generation)
            try:
                submission: Submission | None = backend.submit(task, generation)
                error = None
            except Exception as exc:
                submission, error = None, f"{type(exc).__name__}: {exc}"
            _record(task, generation, submission, error, log)
            return _Act(ResumeOutcome(status, decision, acted=True))
        if decision.action == "reconcile":
            _reconcile(task, status, backend, log)
        elif decision.action == "record_lost":
            cause = status.extra.lost_cause or "node_fail"
            task.append_journal(
                JournalEvent(RUNNER_LOST, reason=status.reason, cause=cause, ckpt=status.extra.ckpt_key)
            )
            task.write_state(TaskState("preempted", reason=status.reason, cause=cause))
            log(f"{task.task_id}: {status.reason}")
        else:
            return _Act(ResumeOutcome(status, decision))
    return _Act(ResumeOutcome(status, decision))


def resume(
    run_root: str | os.PathLike[str],
    backend: Backend,
    policy: Policy | None = None,
    *,
    dry_run: bool = False,
    lease_seconds: float | None = None,
    log: Log = lambda _m: None,
    workers: int | None = None,
    only: set[str] | None = None,
) -> list[ResumeOutcome]:
    """One pass over ``run_root``: classify, decide and (unless ``dry_run``) act on every task.

    ``lease_seconds`` of the task locks defaults to ``$CANDLE_RESTART_LEASE_SECONDS`` or 30 s.
    """
    lease_seconds = default_lease_seconds() if lease_seconds is None else lease_seconds
    policy = policy or Policy()
    policy = replace(policy, reconcile_grace=min(policy.reconcile_grace, backend.reconcile_grace))
    backends: dict[str, Backend] = {backend.name: backend}
    batches = isinstance(backend, BatchSubmit)
    batch = f"cr-{os.getpid()}-{time.time_ns() // 1_000_000}" if batches else None
    outcomes, deferred = [], []
    now = datetime.now(timezone.utc)
    for status in scan(run_root, backends, workers, only):
        decision = decide(status, policy, now)
        if dry_run or decision.action in ("none", "wait", "give_up", "report"):
            outcomes.append(ResumeOutcome(status, decision))
            continue
        task = TaskDir(Path(run_root) / status.task_id)
        try:
            with task_lock(task, lease_seconds=lease_seconds, log=log) as lock:
                acted = _act(task, lock, backend, backends, policy, log, batch)
        except LockBusy as exc:
            outcomes.append(ResumeOutcome(status, Decision("none", str(exc))))
            continue
        outcomes.append(acted.outcome)
        if acted.generation is not None:
            deferred.append((task, acted.generation))
    if deferred and batch is not None and isinstance(backend, BatchSubmit):
        _submit_batch(deferred, backend.submit_many, batch, lease_seconds, log)
    return outcomes


def _submit_batch(
    deferred: list[tuple[TaskDir, int]], submit_many: SubmitMany, batch: str, lease_seconds: float, log: Log
) -> None:
    """Submit every deferred intent as one array; record each answer under its task's lock.

    Between intent and answer no lock is held: a concurrent coordinator sees a
    fresh intent and leaves the task alone (`Policy.reconcile_grace`).
    """
    try:
        submissions: list[Submission | None] = list(submit_many(deferred, batch=batch))
        error = None
    except Exception as exc:
        submissions, error = [None] * len(deferred), f"{type(exc).__name__}: {exc}"
    for (task, generation), submission in zip(deferred, submissions, strict=True):
        try:
            with task_lock(task, lease_seconds=lease_seconds, log=log):
                _record(task, generation, submission, error, log)
        except LockBusy:  # never append without the lock (NFS): the intent is reconciled later
            log(f"{task.task_id}: could not record submission {generation} (lock busy); it will be reconciled")
