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

One bad task never stops a pass: a task that cannot be read (`classify`), whose directory is a
symbolic link leading out of the run root (`task_dirs`: refused, never followed), or that
cannot be acted on (an I/O error: ``.claims`` a plain file, a read-only directory) is an
outcome with ``error`` set (one line), and the pass goes on to the next task.

Nothing here rewrites or deletes a checkpoint.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from candle_restart.coordinator.backend import AvoidHosts, Backend, BatchSubmit, Reconcile, Submission
from candle_restart.coordinator.grace import observe
from candle_restart.coordinator.hostfacts import avoid_bad_hosts
from candle_restart.coordinator.lock import (
    LockBusy,
    TaskLock,
    claim_generation,
    claimed_generations,
    task_lock,
)
from candle_restart.coordinator.policy import Decision, Policy, decide
from candle_restart.coordinator.states import TaskStatus, classify, unreadable
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
from candle_restart.runtime.envvars import TEST_PAUSE_ENV, pause_point
from candle_restart.runtime.lease import default_lease_seconds
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


class RunRootError(CkptError):
    """The run root does not exist or is not a directory."""


@dataclass
class ResumeOutcome:
    """What one pass of `resume` did with one task: its classification, the decision, whether it
    acted, and why it could not (``error``: one line; the pass went on)."""

    status: TaskStatus
    decision: Decision
    acted: bool = False
    error: str | None = None

    @property
    def final(self) -> bool:
        """Nothing more will happen to this task: it completed, was cancelled or pruned, or was given up on."""
        if self.decision.action in ("give_up", "report"):
            return True
        return self.decision.action == "none" and self.status.state in ("completed", "cancelled", "pruned")


def task_entries(
    run_root: str | os.PathLike[str], only: set[str] | None = None
) -> list[tuple[TaskDir, str | None]]:
    """Every directory directly under ``run_root`` that holds a ``task.json`` (and whose name is in
    ``only``, when given), sorted by name, each with None or why it is refused: a symbolic link
    that leads out of the run root (a task directory stays inside its run root, so nothing is
    ever read or written through one)."""
    root = Path(run_root)
    if not root.is_dir():
        raise RunRootError(str(root), None, "is not a directory")
    with os.scandir(root) as entries:
        found = sorted((e.name, e.is_symlink()) for e in entries if not e.name.startswith(".") and e.is_dir())
    if only is not None:
        found = [(n, link) for n, link in found if n in only]
    inside = os.path.realpath(root)
    tasks: list[tuple[TaskDir, str | None]] = []
    for name, link in found:
        target = os.path.realpath(root / name) if link else None
        if target is not None and (target == inside or os.path.commonpath([target, inside]) != inside):
            if (root / name / TASK_FILE).exists():
                refused = f"{root / name}: a symbolic link to {target}, outside the run root; refused"
                tasks.append((TaskDir(root / name), refused))
        elif (root / name / TASK_FILE).exists():
            tasks.append((TaskDir(root / name), None))
    return tasks


def task_dirs(run_root: str | os.PathLike[str], only: set[str] | None = None) -> list[TaskDir]:
    """The task directories of `task_entries` that are not refused."""
    return [task for task, refused in task_entries(run_root, only) if refused is None]


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
    """Classify every task under ``run_root`` (see `classify`), in task-id order; a refused one
    (`task_entries`) is `unreadable`, never read.

    Classification is parsing-bound, so large run roots are split across
    forked worker processes (one per core by default), not threads.
    """
    entries = task_entries(run_root, only)
    tasks = [t for t, refused in entries if refused is None]
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(tasks) < _PARALLEL_FROM or "fork" not in mp.get_all_start_methods():
        found = [classify(t, backends) for t in tasks]
    else:
        _WORKER_BACKENDS.clear()
        _WORKER_BACKENDS.update(backends)  # inherited by the forked workers
        size = -(-len(tasks) // (workers * 4))
        chunks = [[str(t.path) for t in tasks[i : i + size]] for i in range(0, len(tasks), size)]
        with fork_safe(), ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            found = [status for chunk in pool.map(_classify_paths, chunks) for status in chunk]
    classified = iter(found)
    return [next(classified) if refused is None else unreadable(t.task_id, refused) for t, refused in entries]


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
    generation = max(status.generation, claimed_generations(task, log)) + 1
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


def _decide(task: TaskDir, status: TaskStatus, policy: Policy, *, record: bool) -> Decision:
    """`decide`, with the wait it depends on (an intent's grace, a failure's backoff) measured on
    this host's clock (`observe`) only when there is one: nothing is written for other tasks."""
    decision = decide(status, policy)
    if status.pending_intent is not None or decision.action == "wait":
        decision = decide(observe(task, status, record=record), policy)
    return decision


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
        decision = _decide(task, status, policy, record=True)
        if decision.action == "submit":
            pause_point("decided")
            try:
                generation = _intend(task, lock, status, decision, backend, batch, log)
                pause_point("intended")
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
    if isinstance(backend, AvoidHosts) and not batches:  # --exclude the hosts where attempts keep ending badly
        avoid_bad_hosts(run_root, task_dirs(run_root), backend, policy, log)
    batch = f"cr-{os.getpid()}-{time.time_ns() // 1_000_000}" if batches else None
    outcomes, deferred = [], []
    for status in scan(run_root, backends, workers, only):
        task = TaskDir(Path(run_root) / status.task_id)
        if status.extra.error is not None:  # unreadable, or refused: nothing more is read or written
            outcomes.append(ResumeOutcome(status, Decision("report", status.extra.error), error=status.extra.error))
            continue
        try:
            decision = _decide(task, status, policy, record=not dry_run)
            if dry_run or decision.action in ("none", "wait", "give_up", "report"):
                outcomes.append(ResumeOutcome(status, decision))
                continue
            with task_lock(task, lease_seconds=lease_seconds, log=log) as lock:
                acted = _act(task, lock, backend, backends, policy, log, batch)
        except LockBusy as exc:
            outcomes.append(ResumeOutcome(status, Decision("none", str(exc))))
            continue
        except (OSError, CkptError) as exc:  # this task only: the pass goes on
            problem = _one_line(task, exc)
            outcomes.append(ResumeOutcome(status, Decision("report", problem), error=problem))
            continue
        outcomes.append(acted.outcome)
        if acted.generation is not None:
            deferred.append((task, acted.generation))
    if deferred and batch is not None and isinstance(backend, BatchSubmit):
        if isinstance(backend, AvoidHosts):  # after this pass recorded its lost runners
            avoid_bad_hosts(run_root, task_dirs(run_root), backend, policy, log)
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
        except (OSError, CkptError) as exc:  # this task only; its intent is reconciled later
            log(f"{task.task_id}: {_one_line(task, exc)}; submission {generation} will be reconciled")


def _one_line(task: TaskDir, exc: BaseException) -> str:
    """What went wrong with ``task`` (``<file>: <problem>``), in one line."""
    what = f"{exc.filename or task.path}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
    return " ".join(what.split())[:500]
