"""Leases that hold on shared filesystems: one holder at a time, checked before each act.

Used for every "only one at a time" promise: the writer of a checkpoint
directory, the runner of a task, the coordinator deciding for a task.

Built on `filelock.SoftFileLease`: an ``O_EXCL`` marker file (atomic on NFS,
Lustre and GPFS, where ``flock`` may be node-local or missing) that records
host, pid and a claim token, refreshed by a heartbeat thread.

* A dead holder on this host is taken over at once (filelock checks its pid
  and process start).
* A holder on another host is taken over only once its marker has gone
  unrefreshed for ``lease_seconds``; every contender must use the same value.
* A live holder is never broken: its heartbeat keeps the marker fresh.  A
  contender facing a live holder on this host is refused at once; facing one
  on another host, it waits up to 1.5 leases for the lease to expire, then is
  refused.  The refusal (`LeaseBusy`) names the holder: host, pid and since.

A lease alone does not fence a holder that was paused (SIGSTOP, a suspended
job, a stalled VM) past its lease: another may have taken over meanwhile.
So a holder calls `Lease.check` right before each act that must be exclusive
(a commit's renames, a submission); it reads the marker back and raises
`LeaseLost` unless the marker still carries this claim's token.

Beside the marker, ``<lock>.holder`` (JSON: host, pid, since, what, token)
says who holds it and since when, for the refusal message and for humans.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock

from candle_restart.errors import CkptError
from candle_restart.records.holder import HolderRecord, read_holder
from candle_restart.runtime import fsio
from candle_restart.runtime.envvars import (
    LEASE_ENV,  # overrides every default lease (tests, slow filesystems)
)

DEFAULT_LEASE_SECONDS = 30.0
Log = Callable[[str], None]


# The claim token of each lease this process holds, by lock path.
_live: dict[Path, str | None] = {}


class LeaseBusy(CkptError):
    """Another live holder has the lease: nothing was done."""


class LeaseLost(CkptError):
    """The lease this process held was taken over (it was paused or its marker vanished)."""


def default_lease_seconds() -> float:
    """`DEFAULT_LEASE_SECONDS`, or the positive number in ``$CANDLE_RESTART_LEASE_SECONDS``."""
    text = os.environ.get(LEASE_ENV)
    if not text:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise CkptError(f"${LEASE_ENV}", None, f"must be a positive number of seconds, got {text!r}")
    return value


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Marker(filelock.SoftFileLease):
    """SoftFileLease that reports each takeover of a dead holder before it happens."""

    on_break: Callable[[str], None] = staticmethod(lambda _held: None)  # set per instance

    def _take_over(self, marker: Any, breaker_pid: int | None) -> None:  # filelock's hook; logging only
        owner = self.owner
        self.on_break("unreadable marker" if owner is None else f"host {owner.hostname} pid {owner.pid}")
        super()._take_over(marker, breaker_pid)


def clear_empty_marker(path: Path, lease_seconds: float, log: Log) -> None:
    """Remove a lock marker that is still empty a lease after it was created.

    filelock writes its record right after creating the marker, so an empty
    marker older than a lease was left by a holder killed in between; filelock
    cannot attribute it and would wait for it forever.  (A holder merely
    *paused* in that window loses its marker here, and notices at its next
    `Lease.check`, before it acts.)  The marker is renamed aside first and
    removed only if it is still the same empty file, so a fresh marker is
    never taken away.
    """
    try:
        before = path.stat()
    except OSError:
        return
    if before.st_size or time.time() - before.st_mtime < lease_seconds:
        return
    aside = path.with_name(f"{path.name}.empty-{os.getpid()}")
    try:
        os.rename(path, aside)
        after = aside.stat()
    except OSError:
        return
    if (after.st_ino, after.st_size) == (before.st_ino, 0):
        aside.unlink()
        log(f"{path}: removed an empty lock marker left by a killed holder")  # tests match this
    else:  # someone else's fresh marker: put it back
        with contextlib.suppress(OSError):
            os.link(aside, path)
        aside.unlink()


class Lease:
    """One process's claim on ``path`` (see the module docstring).

    ``what`` says what the lease protects, for messages ("the checkpoint
    writer of /x/ckpts").  Not reentrant: acquire once, release once.
    """

    def __init__(self, path: str | os.PathLike[str], what: str, *, lease_seconds: float | None = None) -> None:
        self.path = Path(os.path.abspath(path))
        self.what = what
        self.lease_seconds = lease_seconds if lease_seconds is not None else default_lease_seconds()
        self.since: str | None = None
        self._marker: _Marker | None = None
        self._guard = threading.Lock()

    @property
    def holder_file(self) -> Path:
        return self.path.with_name(self.path.name + ".holder")

    @property
    def held(self) -> bool:
        return self._marker is not None

    def acquire(self, *, wait: float | None = None, patient: bool = False, log: Log = lambda _m: None) -> None:
        """Take the lease, or raise `LeaseBusy` naming the holder.

        A live holder on this host refuses at once (unless ``patient``: then
        it is waited for like any other); one on another host is waited for
        up to ``wait`` seconds (default 1.5 leases) in case it is dead and its
        lease runs out.
        """
        with self._guard:
            if self._marker is not None:
                return
            clear_empty_marker(self.path, self.lease_seconds, log)
            marker = _Marker(
                str(self.path), lease_duration=self.lease_seconds, poll_interval=0.05, thread_local=False
            )
            marker.on_break = lambda held: log(f"{self.what}: taking over from a dead holder ({held})")
            budget = self.lease_seconds * 1.5 if wait is None else wait
            if not _try(marker):
                owner = marker.owner
                if owner is not None and owner.pid == os.getpid() and _live.get(self.path) != owner.token:
                    # copied with its directory (cp -r of a live run): no hold of this process has it
                    log(f"{self.what}: removing a lock marker copied from another directory")
                    marker.force_break()
                elif not patient and owner is not None and owner.hostname == _this_host(marker):
                    raise LeaseBusy(str(self.path.parent), None, f"{self.what} is busy: {self.describe()}")
                elif not patient:
                    log(f"{self.what}: held by {self.describe()}; waiting up to {budget:.0f} s for its lease to end")
                if not _try(marker, budget):
                    raise LeaseBusy(str(self.path.parent), None, f"{self.what} is busy: {self.describe()}")
            self._marker = marker
            _live[self.path] = marker.token
            self.since = _now()
            self._write_holder()
        self.check()

    def _write_holder(self) -> None:
        assert self._marker is not None
        record = HolderRecord(self.what, socket.gethostname(), os.getpid(), self.since, self._marker.token)
        with contextlib.suppress(OSError):  # informative only; the marker is the lease
            fsio.atomic_write_bytes(self.holder_file, record.to_bytes())

    def describe(self) -> str:
        """The current holder as ``host H pid P since T`` (as far as the files say)."""
        owner = None if self._marker is None else self._marker.owner
        if owner is None:
            owner = _Marker(str(self.path), lease_duration=self.lease_seconds).owner
        if owner is None:
            return "a holder that left no readable record"
        since = "?"
        with contextlib.suppress(OSError, CkptError):
            record = read_holder(self.holder_file)
            if record.token == owner.token:
                since = str(record.since)
        host = owner.hostname.split("?pidns-")[0]
        return f"host {host} pid {owner.pid} since {since}"

    def check(self) -> None:
        """Raise `LeaseLost` unless the marker on disk still carries this claim (call before each act)."""
        marker = self._marker
        if marker is None:
            raise LeaseLost(str(self.path), None, f"{self.what}: the lease is not held")
        token = marker.token
        owner = marker.owner
        if token is None or owner is None or owner.token != token or marker.compromise is not None:
            holder = "nobody" if owner is None else self.describe()
            raise LeaseLost(
                str(self.path), None, f"{self.what}: the lease was lost (now held by {holder}); not acting"
            )

    def release(self) -> None:
        """Give the lease back (a no-op if not held); the holder file goes with it when it is ours."""
        with self._guard:
            marker, self._marker = self._marker, None
            if marker is None:
                return
            if _live.get(self.path) == marker.token:
                del _live[self.path]
            with contextlib.suppress(OSError, CkptError):
                if read_holder(self.holder_file).token == marker.token:
                    self.holder_file.unlink()
            with contextlib.suppress(OSError, RuntimeError):
                marker.release(force=True)

    @contextlib.contextmanager
    def held_for(
        self, *, wait: float | None = None, patient: bool = False, log: Log = lambda _m: None
    ) -> Iterator[Lease]:
        """Hold the lease for a block (see `acquire`)."""
        self.acquire(wait=wait, patient=patient, log=log)
        try:
            yield self
        finally:
            self.release()


def _try(marker: _Marker, timeout: float = 0) -> bool:
    """Acquire within ``timeout`` seconds; False if still held by another."""
    try:
        marker.acquire(timeout=timeout)
    except filelock.Timeout:
        return False
    except filelock.LeaseSettingsMismatch as exc:  # a holder with another lease_seconds: never break it
        raise LeaseBusy(str(Path(marker.lock_file).parent), None, f"busy: {exc}") from None
    return True


def _this_host(marker: _Marker) -> str:
    """The host name filelock records for this process (host name plus PID-namespace mark)."""
    return marker._published_record().hostname  # the one name filelock compares


# ----- one hold per process ---------------------------------------------------------------
# Instances in one process that name the same lock share one claim: they are one writer
# (CANDLE's older API restarts through a throwaway callback, then trains with another).
_shared: dict[Path, tuple[Lease, int]] = {}
# Reentrant: a callback's finalizer (drop_shared) may run in the thread that holds the guard,
# when garbage collection strikes inside hold_shared; a plain Lock deadlocked there.  While a
# count is being read and written back (`_updating`), such a drop is deferred to the end of
# the update, so it can never be lost or undone by the write-back.
_shared_guard = threading.RLock()
_updating = threading.local()
_deferred: list[Lease] = []


@contextlib.contextmanager
def _update() -> Iterator[None]:
    """Hold the guard for one read-modify-write of `_shared`; drops deferred meanwhile run after."""
    with _shared_guard:
        _updating.on = True
        try:
            yield
        finally:
            _updating.on = False
    while _deferred:
        try:
            lease = _deferred.pop()
        except IndexError:  # another thread took it
            break
        drop_shared(lease)


def hold_shared(path: Path, what: str, *, log: Log = lambda _m: None) -> Lease:
    """Acquire the lease on ``path`` for this process, or join this process's hold of it."""
    key = Path(os.path.abspath(path))
    with _update():
        if key in _shared:
            joined, count = _shared[key]
            _shared[key] = (joined, count + 1)
            return joined
    lease = Lease(key, what)
    key.parent.mkdir(parents=True, exist_ok=True)
    lease.acquire(log=log)
    with _update():
        if key in _shared:  # another thread of this process won the race: join it
            other, count = _shared[key]
            _shared[key] = (other, count + 1)
            lease.release()
            return other
        _shared[key] = (lease, 1)
    return lease


def drop_shared(lease: Lease) -> None:
    """Leave this process's hold of ``lease``; the last one out releases it.  Called inside an
    update of this thread (a finalizer run by garbage collection there), it is deferred."""
    if getattr(_updating, "on", False):
        _deferred.append(lease)
        return
    last = False
    with _update():
        entry = _shared.get(lease.path)
        if entry is None or entry[0] is not lease:
            return
        if entry[1] > 1:
            _shared[lease.path] = (lease, entry[1] - 1)
        else:
            del _shared[lease.path]
            last = True
    if last:
        lease.release()


def drop_all_shared() -> None:
    """Release every shared hold of this process (the task runner calls it when a training it ran
    in-process has returned: the trainer's objects may live on in reference cycles)."""
    with _update():
        leases = [lease for lease, _count in _shared.values()]
        _shared.clear()
    for lease in leases:
        lease.release()
