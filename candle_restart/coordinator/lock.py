"""The per-task lock of coordinators, and the claim of each submission generation.

The lock is a lease (`candle_restart.runtime.lease`) on ``<task>/.lock``:
coordinators wait for each other (deciding takes milliseconds; submitting a
few seconds), a dead holder on this host is taken over at once, one on
another host once its lease has run out.  Every contender must use the same
``lease_seconds``.  Each takeover of a dead holder's lock is logged.

A lease does not fence a coordinator paused past it (SIGSTOP, a suspended
job): a second one may break it and act meanwhile.  Two things make that
harmless:

* `claim_generation`: submitting generation g first creates
  ``<task>/.claims/g-NNNNNN`` with ``O_EXCL`` (atomic on NFS v3+, Lustre and
  GPFS), so exactly one claimant can ever win g, paused or not;
* the holder checks its lease (`TaskLock.check`) right before it claims and
  right before it calls the backend, and stands down when it was lost.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.holder import ClaimRecord, claim_name, claimed_generation
from candle_restart.runtime.lease import DEFAULT_LEASE_SECONDS, Lease, LeaseBusy
from candle_restart.task.taskdir import TaskDir, now_iso

__all__ = ["DEFAULT_LEASE_SECONDS", "GenerationTaken", "LockBusy", "TaskLock", "claim_generation", "task_lock"]

TaskLock = Lease  # what `task_lock` yields: `check()` before each act


class LockBusy(Exception):
    """Another live coordinator holds the task's lock, or this one lost it."""


class GenerationTaken(CkptError):
    """Another coordinator already claimed this submission generation."""


def claims_dir(task: TaskDir) -> Path:
    return task.path / ".claims"


def claimed_generations(task: TaskDir, log: Callable[[str], None] = lambda _m: None) -> int:
    """The highest generation ever claimed for ``task`` (0 if none).

    A name that `claim_name` never writes is not a claim: it is ignored, with one line to
    ``log``.  OSError when ``.claims`` exists but cannot be listed (a plain file, say).
    """
    try:
        names = os.listdir(claims_dir(task))
    except FileNotFoundError:
        return 0
    numbers = []
    for name in sorted(names):
        generation = claimed_generation(name)
        if generation is not None:
            numbers.append(generation)
        elif not name.startswith("."):
            shown = repr(name if len(name) <= 40 else name[:40] + "...")
            log(f"{claims_dir(task)}: ignoring {shown}: a claim is g- and 6 to 9 ASCII digits")
    return max(numbers, default=0)


def claim_generation(task: TaskDir, generation: int) -> None:
    """Claim ``generation`` for ``task`` atomically; `GenerationTaken` if anyone ever claimed it
    (or it is past `MAX_GENERATION`)."""
    directory = claims_dir(task)
    try:
        name = claim_name(generation)
    except ValueError as exc:
        raise GenerationTaken(str(directory), None, str(exc)) from None
    directory.mkdir(exist_ok=True)
    path = directory / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise GenerationTaken(str(path), None, "generation already claimed by another coordinator") from None
    try:
        os.write(fd, ClaimRecord(socket.gethostname(), os.getpid(), now_iso()).to_bytes())
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def task_lock(
    task: TaskDir,
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    timeout: float | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> Iterator[TaskLock]:
    """Hold ``task``'s lock for the block; LockBusy if a live holder keeps it past ``timeout``.

    ``timeout`` defaults to a little over one lease, so a dead holder on any
    host is always taken over by the next coordinator.  The block gets the
    lease: call its ``check()`` before each act.
    """
    wait = lease_seconds * 1.5 if timeout is None else timeout

    def say(message: str) -> None:  # the core's wording, in the coordinator's terms
        log(message.replace("taking over from a dead holder", "breaking the lock of a dead coordinator"))

    lease = Lease(task.lock_file, task.task_id, lease_seconds=lease_seconds)
    try:
        lease.acquire(wait=wait, patient=True, log=say)
    except LeaseBusy:
        raise LockBusy(f"{task.task_id}: locked by another coordinator") from None
    except CkptError as exc:  # lost right after acquiring (paused between create and record)
        raise LockBusy(f"{task.task_id}: {exc}") from None
    try:
        yield lease
    finally:
        lease.release()
