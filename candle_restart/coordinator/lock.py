"""The per-task lock: a `filelock.SoftFileLease` on ``<task>/.lock``.

Why a soft lease: ``flock`` is node-local on NFS with ``local_lock``, absent
on Lustre without the flock mount option and not exclusive across nodes on
some GPFS setups; an ``O_EXCL`` marker file is atomic on all of them.  The
marker records pid, host and start time: a holder that died on this host is
recognised at once; one on another host is taken over once its marker has
gone unrefreshed for ``lease_seconds`` (the holder's heartbeat thread
refreshes it a few times per lease).  Every contender must use the same
``lease_seconds``.  A lease does not fence a slow holder on its own: the
submission generation in the journal does (see the task runner).

Each takeover of a dead holder's lock is logged with what its marker said.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import filelock

from candle_restart.task.taskdir import TaskDir

DEFAULT_LEASE_SECONDS = 30.0


class LockBusy(Exception):
    """Another live coordinator holds the task's lock."""


class _LoggedLease(filelock.SoftFileLease):
    """A SoftFileLease that reports each takeover of a dead holder's marker before it happens."""

    on_break: Callable[[str], None] = staticmethod(lambda _held: None)  # set per instance

    def _take_over(self, marker: Any, breaker_pid: int | None) -> None:  # filelock's hook; logging only
        try:
            with open(self.lock_file, errors="replace") as f:
                held = " ".join(f.read().split())[:300]
        except OSError:
            held = "(unreadable marker)"
        self.on_break(held)
        super()._take_over(marker, breaker_pid)


def _clear_empty_marker(path: Path, lease_seconds: float, log: Callable[[str], None]) -> None:
    """Remove a lock marker that is still empty a lease after it was created.

    A holder killed between creating its marker and writing its record leaves an
    empty file that filelock cannot attribute to anyone, so it would block the
    task forever.  Writing the record takes microseconds: an empty marker older
    than a lease is such a leftover.  It is renamed aside first and removed only
    if it is still the same empty file, so a fresh marker is never taken away.
    """
    try:
        before = path.stat()
    except FileNotFoundError:
        return
    if before.st_size or time.time() - before.st_mtime < lease_seconds:
        return
    aside = path.with_name(f"{path.name}.empty-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    after = aside.stat()
    if (after.st_ino, after.st_size) == (before.st_ino, 0):
        aside.unlink()
        log(f"{path.parent.name}: removed an empty lock marker left by a killed coordinator")
    else:  # someone else's fresh marker: put it back
        with contextlib.suppress(OSError):
            os.link(aside, path)
        aside.unlink()


@contextlib.contextmanager
def task_lock(
    task: TaskDir,
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    timeout: float | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> Iterator[None]:
    """Hold ``task``'s lock for the block; LockBusy if a live holder keeps it past ``timeout``.

    ``timeout`` defaults to a little over one lease, so a dead holder on any
    host is always taken over by the next coordinator.
    """
    wait = lease_seconds * 1.5 if timeout is None else timeout

    def on_break(held: str) -> None:
        log(f"{task.task_id}: breaking the lock of a dead coordinator: {held}")

    _clear_empty_marker(task.lock_file, lease_seconds, log)
    lease = _LoggedLease(str(task.lock_file), lease_duration=lease_seconds, poll_interval=0.05)
    lease.on_break = on_break
    try:
        lease.acquire(timeout=wait)
    except filelock.Timeout:
        raise LockBusy(f"{task.task_id}: locked by another coordinator") from None
    try:
        yield
    finally:
        lease.release()
