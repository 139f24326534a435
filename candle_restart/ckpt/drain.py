"""Two checkpoint tiers: commit on a node-local tier, drain to the shared ``ckpt_directory``.

With ``ckpt_local_directory`` (``/dev/shm``, ``$TMPDIR``, a local SSD) every
checkpoint commits on the node-local tier first, by the ordinary protocol
(`candle_restart.ckpt.commit`), so training waits only for a local write.  A
`Drainer` then copies committed checkpoints to the shared tier (the
``ckpt_directory`` the coordinator, the report and ``candle-restart ckpt`` read).

The local tier of a run is the directory `local_root` names *below*
``ckpt_local_directory`` (derived from the shared root, so tasks sharing one
``ckpt_local_directory`` never meet), bound to the shared tier by an identity
(`candle_restart.ckpt.tierbind`: a node-local tier left for a shared tier that was
since discarded is never restarted from).  It is written under the shared tier's
writer lease, which covers both tiers.

Contract of `Drainer`:

* `committed` is told of every local commit (any thread).  Every
  ``ckpt_drain_interval``-th of them is drained, and always one marked
  ``must`` (a best, the final one); ``ckpt_drain_interval`` 0 drains only
  those.  The one taken on a preemption signal is drained by `flush`, which
  the caller runs before exit 75.  The checkpoint is staged at
  once as hard links (``.drain-*`` in the local root), so the local keep
  policy may delete ``epochs/NNN`` while it drains.
* At most one drain runs at a time, in a thread of the drainer's own (not a
  daemon: a process that ends normally finishes it).  A drain waiting its turn
  is superseded by a newer one, except that a best is superseded only by a
  newer best: when the shared tier is slower than the checkpoints, the drainer
  skips checkpoints instead of falling behind, and never skips the best.
* A drain copies into a work directory of the shared tier, fsyncs it,
  verifies every file's size and CRC-32: the CRC computed while copying against
  the one ``ckpt-info.json`` records (nothing read back), else the copy read back
  against the source's (`candle_restart.ckpt.checksum.copy_verified`), then
  publishes it by the normal commit, fenced by the writer lease: the shared
  ``last`` moves only when a copy is whole and verified, and a kill -9 at any
  instant leaves it on the previous checkpoint.  Its `begin` is fenced too, and a
  drain that fails removes its copy at once (a full shared tier is not left
  holding it).  The shared tier's keep policy runs after each drain.
* `flush` returns once the newest local commit is on the shared tier
  (draining it now if the interval skipped it).  A drain of an older checkpoint
  in flight is abandoned (checked between chunks and before its commit; its work
  directory is removed, fenced, so no half copy stays), unless it is a best and
  the newest is not; it raises `CommitError` when the newest could not be
  drained, and logs how long it took and, after a preemption signal, how that
  compares with the grace period.  The caller flushes before exit 75 and at
  the end of training, before it gives the writer lease back.
* The checkpoint a stop waits for is not drained: the engine commits it on the
  shared tier itself (one write instead of a node-local commit and a copy),
  after `clear_way` (the drains it supersedes go, as above), and reports it with
  `published`, which makes it the newest and drained.
* Once the final checkpoint (``complete``) is on the shared tier, `flush` removes the
  node-local tier (``/dev/shm`` is memory, and nothing on the node would free it).
* A failed drain is logged and does not stop training: the next one tries again.
* ``local-tier.json`` (`candle_restart.records.localtier`) in the shared tier
  records the newest local commit and whether it was drained, so readers of
  the shared tier can say when the newest checkpoint exists only on a node.
* `choose_restart` picks the newer of the node-local and the shared tier's
  checkpoint (the node-local one on a tie: it reads faster), and schedules a
  drain of a node-local one the shared tier lacks.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from candle_restart.ckpt import commit
from candle_restart.ckpt.drainjob import Abandoned, Job, copy_to_shared, keep_shared, stage, sweep_staging
from candle_restart.ckpt.layout import INFO_FILE, CkptLayout, epoch_name
from candle_restart.ckpt.log import console_held
from candle_restart.ckpt.restore import Defer, Found, Rejected, find_restart
from candle_restart.errors import CkptError, CommitError
from candle_restart.records.ckptinfo import read_ckpt_info
from candle_restart.records.localtier import LOCAL_TIER_FILE, LocalTierRecord
from candle_restart.runtime.fsio import atomic_write_bytes
from candle_restart.runtime.preempt import REQUEST

Log = Callable[[str], None]
# The local tier's keep policy: the newest two (plus what the engine protects: its best).
LOCAL_KEEP = ("linear", 2)
STAGE_PREFIX = ".drain-"


def local_root(local_directory: str | os.PathLike[str], shared_root: Path) -> Path:
    """The node-local tier of the checkpoint directory ``shared_root``: a directory below
    ``local_directory`` named after ``shared_root`` (its last two components and a hash)."""
    label = re.sub(r"[^A-Za-z0-9._-]", "_", f"{shared_root.parent.name}-{shared_root.name}")[-64:]
    digest = hashlib.sha256(str(shared_root).encode()).hexdigest()[:12]
    return Path(os.path.abspath(local_directory)) / f"{label}-{digest}"


def progress(found: Found) -> tuple[int, int, str]:
    """How far a checkpoint got: (epochs finished, batches into the next, timestamp), for comparisons."""
    info = found.info
    return (info.epoch, 0 if info.position is None else info.position.batch, info.timestamp or "")


class Drainer:
    """Copies node-local checkpoints to the shared tier (see the module docstring)."""

    def __init__(
        self,
        local: CkptLayout,
        shared: CkptLayout,
        *,
        interval: int,
        keep_mode: str,
        keep_limit: int,
        fence: commit.Fence,
        log: Log,
        debug: Log,
        grace: float,
    ) -> None:
        self.local, self.shared = local, shared
        self.interval = interval
        self.keep_mode, self.keep_limit = keep_mode, keep_limit
        self.fence = fence
        self.log, self.debug = log, debug
        self.grace = grace  # seconds between a preemption signal and the kill (ckpt_halt_seconds)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pending: list[Job] = []
        self._current: Job | None = None
        self._since = 0  # local commits since the last one scheduled
        self._serial = 0  # local commits told of so far (newest first drained wins)
        self._newest: tuple[int, int, str] | None = None  # (serial, epoch, time) of the newest local commit
        self._newest_batch: int | None = None  # and its batch (None: an epoch's end)
        self._drained = 0  # serial of the newest checkpoint on the shared tier
        self._record_due = False
        self._complete = False  # the newest drained checkpoint ends the training
        self._failure: BaseException | None = None
        self._swept = False
        self.drains = 0  # drains completed
        self.bytes_copied = 0
        self.seconds = 0.0  # time spent draining, in all
        self.slowest = 0.0  # the longest drain (a halt before the walltime must leave time for one)

    # ----- what the engine calls -------------------------------------------------------
    def committed(self, epoch: int, must: bool = False, batch: int | None = None) -> None:
        """A checkpoint of ``epoch`` (``batch``: batches into it; None: its end) was committed on the
        local tier; drain it if due (see module doc)."""
        with self._cond:
            self._sweep_debris()
            self._serial += 1
            self._newest, self._newest_batch = (self._serial, epoch, LocalTierRecord.now()), batch
            self._record_due = True
            self._since += 1
            due = must or (self.interval > 0 and self._since >= self.interval)
            if due:
                self._since = 0
                self._try_enqueue(epoch, self.local.epoch_dir(epoch))
            self._start_worker()

    def flush(self) -> None:
        """Return once the newest local commit is on the shared tier; `CommitError` if it could not be."""
        started = time.monotonic()
        with self._cond:
            newest = self._newest
            if newest is not None and newest[0] > self._drained and not self._queued(newest[0]):
                try:
                    self._enqueue(self._stage(newest[1], self.local.epoch_dir(newest[1]), newest[0]))
                except (OSError, CkptError) as exc:
                    raise CommitError(
                        str(self.local.epoch_dir(newest[1])),
                        None,
                        f"cannot stage it for the shared tier: {exc}",
                    ) from exc
                self._start_worker()
            if newest is not None:
                self._abandon_older(newest[0])
            while self._thread is not None:
                self._cond.wait()
            failure, self._failure = self._failure, None
            drained = self._drained
        if newest is None:
            return
        if newest[0] > drained:
            raise CommitError(
                str(self.shared.root),
                None,
                f"the newest checkpoint (epoch {newest[1]}, on the node-local tier {self.local.root}) "
                f"did not reach the shared tier: {failure}",
            )
        took = time.monotonic() - started
        line = f"drain: epoch {newest[1]} is on the shared tier; flushing took {took:.3f} seconds"
        if REQUEST.requested:
            since = time.monotonic() - REQUEST.received
            verdict = "within" if since <= self.grace else "OVER"
            line += f", {since:.3f} seconds after {REQUEST.name}: {verdict} a {self.grace:g} s grace period"
        self.log(line)
        if self._complete and newest[0] == drained:
            self._remove_local_tier()

    def clear_way(self, best: bool) -> None:
        """The caller will commit a newer checkpoint on the shared tier itself (a stop's, `CkptEngine.run`):
        the drains it supersedes go (waiting ones removed, the one in flight abandoned; a best only for
        a best, so the shared ``last`` never goes back); returns once no drain runs."""
        with self._cond:
            self._supersede(best)
            self._abandon_current(best)
            while self._thread is not None:
                self._cond.wait()

    def published(self, epoch: int, complete: bool, batch: int | None = None) -> None:
        """The caller committed ``epoch`` on the shared tier (after `clear_way`): the newest, drained.
        ``local-tier.json`` stays as it is: its readers see that this checkpoint supersedes it."""
        with self._cond:
            self._serial += 1
            self._newest, self._newest_batch = (self._serial, epoch, LocalTierRecord.now()), batch
            self._drained, self._complete, self._since = self._serial, complete, 0
        try:
            self._keep(epoch)
        except (CkptError, OSError) as exc:  # as after a drain: the checkpoint is committed all the same
            self.log(f"drain: the shared tier's keep policy after epoch {epoch} failed: {exc}")

    def _remove_local_tier(self) -> None:
        """The final checkpoint is on the shared tier: free the node-local tier (``/dev/shm`` is memory)."""
        with self._cond:
            shutil.rmtree(self.local.root, ignore_errors=True)
            self._newest, self._drained, self._record_due = None, 0, False
        self.log(
            f"drain: training complete and on the shared tier; removed the node-local tier {self.local.root}"
        )

    def join(self) -> None:
        """Return once no drain runs or waits (unlike `flush`, drains nothing the interval skipped)."""
        with self._cond:
            while self._thread is not None:
                self._cond.wait()

    def choose_restart(
        self,
        found_local: Found | None,
        log: Log,
        rejected: list[Rejected] | None = None,
        defer: Defer | None = None,
    ) -> Found | None:
        """The newer of ``found_local`` (the local tier's restart choice) and the shared tier's.

        A node-local checkpoint newer than the shared tier's is scheduled for draining.
        Shared checkpoints that fail verification are appended to ``rejected``.
        """
        found_shared = find_restart(
            self.shared, True, log, set_aside=True, rejected=rejected, fence=self.fence, defer=defer
        )
        if found_local is None:
            return found_shared
        if found_shared is not None and progress(found_shared) > progress(found_local):
            log(
                f"restarting: the shared tier's epochs/{epoch_name(found_shared.epoch)} is newer than "
                f"the node-local tier's epochs/{epoch_name(found_local.epoch)}: using the shared one"
            )
            return found_shared
        log(f"restarting: from the node-local tier {self.local.root}")
        if found_shared is None or progress(found_shared) != progress(found_local):
            with self._cond:
                self._sweep_debris()
                self._serial += 1
                self._newest = (self._serial, found_local.epoch, LocalTierRecord.now())
                self._newest_batch = found_local.info.batch
                self._record_due = True
                self._try_enqueue(found_local.epoch, found_local.path)
                self._start_worker()
        return found_local

    # ----- staging and the queue (callers hold self._cond) --------------------------------
    def _sweep_debris(self) -> None:
        """Remove staging a dead process left (once: the writer lease is held by now)."""
        if not self._swept:
            self._swept = True
            sweep_staging(self.local.root, STAGE_PREFIX)

    def _try_enqueue(self, epoch: int, source: Path) -> None:
        """Stage and queue the newest commit; a failure is logged (`flush` tries again), never raised."""
        try:
            self._enqueue(self._stage(epoch, source, self._serial))
        except (OSError, CkptError) as exc:
            self.log(f"drain: cannot stage epoch {epoch} for the shared tier: {exc}")

    def _stage(self, epoch: int, source: Path, serial: int) -> Job:
        return stage(self.local.root, STAGE_PREFIX, epoch, source, serial)

    def _enqueue(self, job: Job) -> None:
        """Queue ``job`` behind the waiting jobs it does not supersede."""
        self._supersede(job.best)
        self._pending.append(job)

    def _supersede(self, best: bool) -> None:
        """A newer checkpoint comes: the waiting drains go, but a best only for a newer best."""
        kept = [job for job in self._pending if job.best and not best]
        for job in self._pending:
            if job not in kept:
                shutil.rmtree(job.staged, ignore_errors=True)
                self.debug(f"drain: epoch {job.epoch} skipped (a newer checkpoint supersedes it)")
        self._pending = kept

    def _abandon_older(self, serial: int) -> None:
        """`flush` needs checkpoint ``serial``: abandon the drain in flight of an older one (`_abandon_current`)."""
        wanted = next((job for job in self._pending if job.serial == serial), None)
        if self._current is not None and wanted is not None and self._current.serial < serial:
            self._abandon_current(wanted.best)

    def _abandon_current(self, best: bool) -> None:
        """A newer checkpoint (``best`` or not) needs the shared tier: abandon the drain in flight,
        unless it is a best and the newer one is not (a best is never skipped for a non-best)."""
        if self._current is not None and (best or not self._current.best):
            self._current.abandon = True

    def _queued(self, serial: int) -> bool:
        return any(job.serial == serial for job in [*self._pending, *([self._current] if self._current else [])])

    def _start_worker(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="candle-drain", daemon=False)
            self._thread.start()

    # ----- the drainer's thread --------------------------------------------------------------
    def _work(self) -> None:
        with console_held():  # stdout gets the lines between epochs, never inside a progress line
            self._work_held()

    def _work_held(self) -> None:
        while True:
            with self._cond:
                record = self._record() if self._record_due else None
                self._record_due = False
                job = self._pending.pop(0) if self._pending else None
                self._current = job
                if job is None and record is None:
                    self._thread = None
                    self._cond.notify_all()
                    return
            if record is not None:
                try:
                    self.fence()  # a writer that lost its lease never replaces the new holder's record
                    atomic_write_bytes(self.shared.root / LOCAL_TIER_FILE, record.to_bytes())
                except (OSError, CkptError) as exc:  # a hint for readers only: training goes on
                    self.log(f"drain: cannot write {LOCAL_TIER_FILE}: {exc}")
            if job is None:
                continue
            try:
                self._drain(job)
                with self._cond:
                    self._drained = max(self._drained, job.serial)
                    self._complete = job.complete and job.serial == self._drained
                    self._record_due = True
            except Abandoned:  # not a failure: `flush` wants a newer checkpoint now
                self.log(f"drain: epoch {job.epoch} abandoned for a newer checkpoint (flush); nothing of it published")
            except BaseException as exc:  # the shared tier failed: logged, tried again by the next drain
                with self._cond:
                    self._failure = exc
                self.log(f"drain: copying epoch {job.epoch} to the shared tier failed: {exc}")
            finally:
                with self._cond:
                    self._current = None
                shutil.rmtree(job.staged, ignore_errors=True)

    def _record(self) -> LocalTierRecord | None:
        if self._newest is None:
            return None
        serial, epoch, when = self._newest
        drained = serial <= self._drained
        return LocalTierRecord(socket.gethostname(), str(self.local.root), epoch, when, drained, self._newest_batch)

    def _drain(self, job: Job) -> None:
        """Copy, verify and publish one staged checkpoint on the shared tier, then apply its keep policy."""
        started = time.monotonic()
        info = read_ckpt_info(job.staged / INFO_FILE)
        nbytes = copy_to_shared(job, info, self.shared, self.fence, lambda: self._check(job))
        self._keep(job.epoch)
        took = max(time.monotonic() - started, 1e-9)
        self.drains += 1
        self.bytes_copied += nbytes
        self.seconds += took
        self.slowest = max(self.slowest, took)
        megabytes = nbytes / (1024 * 1024)
        self.log(
            f"drain: epoch {job.epoch} copied to the shared tier and verified: {megabytes:0.3f} MB "
            f"in {took:.3f} seconds ({megabytes / took:0.2f} MB/s)"
        )

    def _check(self, job: Job) -> None:
        """Between chunks of a copy and before its commit: raise `Abandoned` if `flush` gave it up
        (`commit.writing` then removes the work directory, fenced)."""
        with self._cond:
            if job.abandon:
                raise Abandoned(job.epoch)

    def _keep(self, epoch_now: int) -> None:
        """The keep policy on the shared tier (`keep_shared`)."""
        keep_shared(self.shared, epoch_now, self.keep_mode, self.keep_limit, self.fence, self.debug)
