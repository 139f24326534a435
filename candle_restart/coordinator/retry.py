"""``resume --retry-failed``: ask again for tasks that failed, were bad input, or were given up.

Nothing is deleted or rewritten: under each task's lock (`task_lock`) the task is classified
afresh and, when it is ``failed`` (a training error, bad input, an unreadable ``state.json``)
or the policy gives it up (its failures or preemptions reached their caps), a
``retry_requested`` event is appended to its journal.  Classification honours it
(`candle_restart.coordinator.states`): the counts of failures and preemptions start again
after it, and the policy resubmits the task at once, without backoff.  The submission itself
is the ordinary one of `resume`, through the same claim of a generation, so two users retrying
at once still submit each task exactly once.  Other tasks (completed, running, queued,
preempted within budget, new, corrupt, cancelled) are left alone and said so.  A task that
cannot be read or written (`RetryAnswer.error`) is said so in one line, and the others go on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from candle_restart.coordinator.backend import Backend
from candle_restart.coordinator.lock import LockBusy, task_lock
from candle_restart.coordinator.policy import Policy, decide
from candle_restart.coordinator.resume import RunRootError, task_entries
from candle_restart.coordinator.states import TaskStatus, classify
from candle_restart.errors import CkptError
from candle_restart.records.journal import RETRY_REQUESTED, JournalEvent
from candle_restart.records.jsontypes import JsonObject
from candle_restart.runtime.lease import default_lease_seconds
from candle_restart.task.taskdir import TaskDir


@dataclass(frozen=True)
class RetryAnswer:
    """What `request_retry` did for one task: ``requested`` (journaled, or would be in a dry run);
    ``error`` when the task could not be read or written (``line`` says why)."""

    task_id: str
    state: str
    requested: bool
    line: str
    error: bool = False


def retryable(status: TaskStatus, policy: Policy) -> bool:
    """True for a task that failed (any way) or that ``policy`` gives up on."""
    if status.state == "failed":
        return True
    return status.state == "preempted" and decide(status, policy).action == "give_up"


def request_retry(
    run_root: str | os.PathLike[str],
    backends: dict[str, Backend],
    policy: Policy,
    only: list[str] | None = None,
    *,
    dry_run: bool = False,
    lease_seconds: float | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> list[RetryAnswer]:
    """Journal ``retry_requested`` for every eligible task (of ``only``, when given); see the module.

    A name in ``only`` that is not a task of ``run_root`` raises `RunRootError` before anything is written.
    """
    lease_seconds = default_lease_seconds() if lease_seconds is None else lease_seconds
    entries = task_entries(run_root, set(only) if only else None)
    missing = sorted(set(only or ()) - {t.task_id for t, _ in entries})
    if missing:
        raise RunRootError(str(Path(run_root) / missing[0]), None, "is not a task of this run root")
    answers = []
    for task, refused in entries:
        if refused is not None:
            answers.append(RetryAnswer(task.task_id, "failed", False, refused, error=True))
            continue
        try:
            answers.append(_one(task, backends, policy, dry_run, lease_seconds, log))
        except OSError as exc:  # this task only: the others go on
            line = " ".join(f"{task.task_id}: {exc.filename or task.path}: {exc.strerror or exc}".split())
            answers.append(RetryAnswer(task.task_id, "failed", False, f"{line}; not retried", error=True))
    return answers


def _one(
    task: TaskDir,
    backends: dict[str, Backend],
    policy: Policy,
    dry_run: bool,
    lease_seconds: float,
    log: Callable[[str], None],
) -> RetryAnswer:
    status = classify(task, backends)
    if status.extra.error is not None:
        return RetryAnswer(task.task_id, status.state, False, f"{status.extra.error}; not retried", error=True)
    if not retryable(status, policy):
        return RetryAnswer(task.task_id, status.state, False, f"{task.task_id}: {status.state}; not retried")
    if dry_run:
        return RetryAnswer(
            task.task_id, status.state, True, f"{task.task_id}: {status.state}; would be retried"
        )
    try:
        with task_lock(task, lease_seconds=lease_seconds, log=log) as lock:
            status = classify(task, backends)  # another coordinator may have acted meanwhile
            if not retryable(status, policy):
                line = f"{task.task_id}: {status.state}; not retried"
                return RetryAnswer(task.task_id, status.state, False, line)
            lock.check()
            by: JsonObject = {"host": os.uname().nodename, "pid": os.getpid()}
            counts: JsonObject = {"state": status.state, "failures": status.failures, "preemptions": status.preemptions}
            task.append_journal(JournalEvent(RETRY_REQUESTED, reason=status.reason, extras={**counts, "by": by}))
    except (LockBusy, CkptError) as exc:  # busy, or lost while held: the next pass asks again
        return RetryAnswer(task.task_id, status.state, False, f"{task.task_id}: {exc}; not retried")
    return RetryAnswer(task.task_id, status.state, True, f"{task.task_id}: {status.state}; retry requested")
