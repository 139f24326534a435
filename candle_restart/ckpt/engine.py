"""The checkpoint engine: how one checkpoint is taken, written, committed and cleaned up.

`CkptEngine` is a composition of collaborators, each owning its state:

* `candle_restart.ckpt.writerlease.WriterLease`: the writer lease of ``ckpt_directory`` and the
  commit protocol's fence;
* `candle_restart.ckpt.writer.CheckpointWriter`: a checkpoint's files, checksums and `CkptInfo`;
* `candle_restart.ckpt.background.BackgroundCommit`: the commit thread; it runs `CkptEngine.run`
  on an immutable `CommitJob` and keeps the `CommitResult`;
* `candle_restart.ckpt.keeper.Keeper`: the keep policy;
* `candle_restart.ckpt.best.BestTracker`: the best-metric bookkeeping;
* `candle_restart.ckpt.pacing.Pacer`: the interval and the halt before the walltime;
* `candle_restart.ckpt.drain.Drainer` (two tiers, ``ckpt_local_directory``): copies node-local
  commits to the shared ``ckpt_directory`` in a thread of its own.

With two tiers, ``layout`` (commits, the keep policy, restart) is the node-local tier, which
keeps `LOCAL_KEEP`; ``shared`` (the writer lease, ``events.jsonl``, the drains, which keep
what ``ckpt_keep_*`` say) is ``ckpt_directory``.  With one tier both are ``ckpt_directory``.
A checkpoint taken once a stop is requested (a signal, a halt before the walltime) is
committed on ``shared`` directly (`CkptEngine.run`): the exit waits for one write, as with one tier.

The engine's own state (``epochs`` committed, whether ``last``/``best`` are this
run's, ...) is written by the training thread only: results of background
commits are applied by `apply` when the training thread next waits or polls.

The framework comes in through `Backend`, its hooks only (what
`candle_restart.candle.facade.CandleCkpt`'s subclasses implement with CANDLE's method
names); the log (`Logs`) and the settings are given to the engine as themselves.  The named events
are the methods `epoch_ended`, `committed`, `waiting_for_commit`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from candle_restart.ckpt import commit
from candle_restart.ckpt.background import BackgroundCommit
from candle_restart.ckpt.best import BestTracker
from candle_restart.ckpt.checksum import DISABLED
from candle_restart.ckpt.drain import LOCAL_KEEP, Drainer
from candle_restart.ckpt.events import EpochEvents, PendingCommit
from candle_restart.ckpt.keeper import Keeper
from candle_restart.ckpt.layout import CkptLayout
from candle_restart.ckpt.log import Logs
from candle_restart.ckpt.pacing import Pacer
from candle_restart.ckpt.params import CkptParams
from candle_restart.ckpt.sink import Snapshot
from candle_restart.ckpt.tierbind import bind_local_tier
from candle_restart.ckpt.writer import CheckpointWriter, FileTable, model_crc, with_files
from candle_restart.ckpt.writerlease import WriterLease
from candle_restart.errors import CkptError, CommitError
from candle_restart.records.ckptinfo import CkptInfo, FileEntry, Position
from candle_restart.runtime.deadline import halt_seconds
from candle_restart.runtime.heartbeat import HEARTBEAT
from candle_restart.runtime.preempt import REQUEST


class Backend(Protocol):
    """The framework's hooks, all the engine calls on the framework side (CANDLE's method names).

    Only these: the engine logs through the `Logs` and shortens paths with the ``relpath``
    it is given, and reads the settings it holds (`CkptEngine.configure`).
    """

    model_file_name: str  # the model file's name inside a checkpoint

    def snapshot_model(self, epoch: int) -> Snapshot | None:
        """The model captured in memory for a background commit; None: write it synchronously."""
        ...

    def write_snapshot(self, snapshot: Snapshot, dir_work: Path) -> Mapping[str, FileEntry]:
        """Write ``snapshot`` into ``dir_work`` (any thread); its files table."""
        ...

    def write_model(self, dir_work: Path, epoch: int) -> None:
        """Write the live model into ``dir_work`` (training thread) and checksum it into ``last_files``."""
        ...


@dataclass(frozen=True)
class CommitJob:
    """Everything a commit needs, fixed when the checkpoint is taken (handed to the commit thread)."""

    epoch: int
    info: CkptInfo  # without the files table
    snapshot: Snapshot | None  # None: the backend writes the live model (training thread only)
    best: bool  # point best at it
    drop_best: bool  # remove an earlier run's best link
    protect: frozenset[int]  # epochs the keep policy must spare besides this one
    started: float  # the pacer's clock when the checkpoint was begun
    pending: PendingCommit  # its commit event, timed from the start; handed to the thread with the job
    direct: bool = False  # two tiers, a stop's checkpoint: committed on the shared tier itself (`run`)


@dataclass(frozen=True)
class CommitResult:
    """What a commit did, for the training thread to record."""

    epoch: int
    path: Path
    seconds: float  # from the checkpoint's start to its commit
    nbytes: int
    model_crc: str | None
    deleted: tuple[int, ...]


class CkptEngine:
    """Takes, writes, commits and cleans checkpoints (see the module docstring)."""

    def __init__(
        self,
        settings: CkptParams,
        layout: CkptLayout,
        backend: Backend,
        shared: CkptLayout | None = None,
        *,
        logs: Logs,
        relpath: Callable[[Path], Path],
    ) -> None:
        """``shared``: ``ckpt_directory`` when ``layout`` is a node-local tier (None: one tier);
        ``logs``: where every collaborator logs; ``relpath``: how paths are shown in the log."""
        self.settings = settings
        self.layout = layout
        self.shared = layout if shared is None else shared
        self.backend = backend
        self.logs = logs
        self.relpath = relpath
        self.lease = WriterLease(self.shared, lambda m: logs.info(m))  # one lease covers both tiers
        self.writer = CheckpointWriter(settings.checksum, logs, relpath)
        two_tiers = self.shared != layout
        self.writer.record_crc = two_tiers  # the drain checks its copy against them (no read back)
        keep_mode, keep_limit = LOCAL_KEEP if two_tiers else (settings.keep_mode, settings.keep_limit)
        self.keeper = Keeper(layout, keep_mode, keep_limit, logs, self.lease.fence, relpath)
        self.best = BestTracker(settings.save_best, settings.save_best_metric, settings.best_metric_last)
        self.committer: BackgroundCommit[CommitResult] = BackgroundCommit(lambda m: logs.info(m))
        self.drainer = self._drainer() if two_tiers else None
        if two_tiers:  # a stale node-local tier (its shared tier discarded) is never used
            self.lease.on_hold = lambda: bind_local_tier(layout, self.shared, self.lease.fence, logs.info)
        self.pacer = Pacer(
            settings,
            lambda m: logs.info(m),
            lambda m: logs.debug(m),
            slowest_drain=None if self.drainer is None else self._slowest_drain,
            first_batch=lambda: self.events.train_started(),  # events.jsonl's train_start
        )
        self.epochs: list[int] = []  # epochs this instance committed and still keeps, ascending
        # Whether last/best name this run's checkpoints: True once a restart loaded one or this
        # instance committed; until then they are an earlier run's debris (a fresh start).
        self.links_own = False
        self.in_training = False  # set by the backend's hooks: commits run in the background only then
        self.last_save_time = time.monotonic()
        self.saving_position: Position | None = None  # the position of the checkpoint being taken
        self.last_files: FileTable = {}  # the last synchronous checksum pass (CANDLE's checksum())
        self.cksum_model = DISABLED  # CRC-32 of the model file of the last committed checkpoint
        tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.work_dir, self.shared_work_dir = layout.work_dir(tag), self.shared.work_dir(tag)
        # ckpts/events.jsonl, on the shared tier: the report reads it there.
        self.events = EpochEvents.of(settings, self.shared.root, logs.warning)

    def configure(self, settings: CkptParams) -> None:
        """Make ``settings`` (the facade's, after a CANDLE-style assignment) every collaborator's.

        The engine's own reads (``save_best``, ``epochs``, ``metadata``, ...) and the pacer's go
        through ``self.settings``; the keep policy, checksums, best tracking, events and drains
        take their copies here.  The directories and tiers are fixed at construction.
        """
        self.settings = settings
        self.pacer.settings = settings
        self.writer.checksum_enabled = settings.checksum
        if self.drainer is None:
            self.keeper.mode, self.keeper.limit = settings.keep_mode, settings.keep_limit
        else:  # two tiers: ckpt_keep_* is the shared tier's; the node-local tier keeps LOCAL_KEEP
            self.drainer.keep_mode, self.drainer.keep_limit = settings.keep_mode, settings.keep_limit
            self.drainer.interval = settings.drain_interval
        self.best.enabled, self.best.metric = settings.save_best, settings.save_best_metric
        self.events.metric = settings.save_best_metric if settings.save_best else None

    def _drainer(self) -> Drainer:
        """The `Drainer` of a two-tier run: the shared tier keeps what ``ckpt_keep_*`` say."""
        logs = self.logs
        return Drainer(
            self.layout,
            self.shared,
            interval=self.settings.drain_interval,
            keep_mode=self.settings.keep_mode,
            keep_limit=self.settings.keep_limit,
            fence=self.lease.fence,
            log=lambda m: logs.info(m),
            debug=lambda m: logs.debug(m),
            grace=halt_seconds(self.settings.halt_seconds),
        )

    def _slowest_drain(self) -> float:
        """The longest drain so far (the pacer's halt leaves time for the final one)."""
        return 0.0 if self.drainer is None else self.drainer.slowest

    # ----- taking a checkpoint -------------------------------------------------------------
    def epoch_ended(self, epoch: int) -> None:
        """An epoch ended (1-based ``epoch``): the pacer may record a halt before the walltime."""
        self.pacer.epoch_end()

    def save(self, epoch: int, position: Position | None) -> Path:
        """Take the checkpoint of 1-based ``epoch`` (``position``: inside it); its directory.

        Async (returns once the snapshot is in memory) when the backend can snapshot,
        ``ckpt_async`` is on and a training is running; else committed on return.
        """
        if self.in_training:  # the watchdog times a wait for a commit by the commits it has seen
            HEARTBEAT.beat("commit")
        try:
            return self._save(epoch, position)
        finally:
            if self.in_training:
                HEARTBEAT.beat("step")

    def _save(self, epoch: int, position: Position | None) -> Path:
        started = self.pacer.saving()
        where = None if position is None else {"epoch": position.epoch, "batch": position.batch}
        pending = self.events.saving(epoch, where, self.best.epoch == epoch, epoch >= self.settings.epochs)
        self.saving_position = position
        self.apply(self.committer.wait())  # one snapshot in flight at most; raises an earlier failure
        self.lease.hold()
        snapshot = self.backend.snapshot_model(epoch)
        info = self.writer.describe(
            epoch,
            position,
            model_file=self.backend.model_file_name,
            best=self.best,
            epochs=self.settings.epochs,
            metadata=self.settings.metadata,
        )
        is_best = position is None and self.best.epoch == epoch
        protect = frozenset({self.best.epoch} if self.settings.save_best and self.best.epoch else ())
        # A fresh start's first commit takes last and best over: a best link left by an earlier run goes.
        # Two tiers: the checkpoint a stop waits for goes straight to the shared tier (`run`).
        direct = self.drainer is not None and REQUEST.requested
        job = CommitJob(
            epoch, info, snapshot, is_best, not is_best and not self.links_own, protect, started, pending, direct
        )
        self.last_save_time = time.monotonic()
        if snapshot is not None and self.settings.async_commit and self.in_training:
            self.apply(self.committer.start(f"epoch {epoch}", lambda: self.run(job)))
        else:
            self.apply(self.run(job))
        self.pacer.saved()
        return self.layout.epoch_dir(epoch)

    def run(self, job: CommitJob) -> CommitResult:
        """Write ``work/``, commit it as ``epochs/NNN``, apply the keep policy (any thread).

        Touches the files, the log and the lease's fence; returns what it did.  Two tiers: a ``direct``
        job (a stop's checkpoint) is committed on the shared tier itself once the drains it supersedes
        are gone (`Drainer.clear_way`): one write, not a node-local commit and a copy.  Should the shared
        tier fail, it is committed node-locally as any other, and the flush before the exit drains it."""
        job.pending.writing()
        try:
            if job.direct and self.drainer is not None:
                try:
                    return self._run_shared(job, self.drainer)
                except (CkptError, OSError) as exc:
                    self.lease.held_after(exc, f"the checkpoint of epoch {job.epoch}")  # else no fallback
                    self.logs.info(
                        f"drain: the checkpoint of epoch {job.epoch} could not be committed on the shared "
                        f"tier ({exc}); committing it on the node-local tier"
                    )
            target, files, had_best = self._write(self.layout, self.work_dir, job, job.drop_best)
        finally:
            if job.snapshot is not None:
                job.snapshot.discard()
        self._say_links(self.layout, self.work_dir, target, job, job.drop_best and had_best)
        if self.drainer is not None:
            # Often in the commit thread: a hand-off through the drainer's own synchronised queue,
            # not shared state (it stages hard links and queues the drain under its own lock; its
            # own thread copies). Before the keep policy, which may delete epochs/NNN. A best or
            # the final checkpoint is always drained.
            self.drainer.committed(job.epoch, must=job.best or job.info.complete is True, batch=job.info.batch)
        try:
            deleted = self.keeper.clean(job.epoch, job.protect)
        except (CkptError, OSError) as exc:  # the lease was lost right after the commit: nothing is deleted
            raise CommitError(str(self.layout.root), None, f"keep policy not applied: {exc}") from exc
        return self._result(job, target, files, tuple(deleted))

    def _run_shared(self, job: CommitJob, drainer: Drainer) -> CommitResult:
        """Commit ``job`` on the shared tier (a ``direct`` job; see `run`), then its keep policy."""
        drainer.clear_way(job.best)
        # As a drain publishes: no best on the shared tier yet, so an earlier run's best link goes.
        drop_best = job.info.best_epoch is None
        target, files, had_best = self._write(self.shared, self.shared_work_dir, job, drop_best)
        self._say_links(self.shared, self.shared_work_dir, target, job, drop_best and had_best)
        drainer.published(job.epoch, complete=job.info.complete is True, batch=job.info.batch)
        return self._result(job, target, files, ())

    def _write(
        self, layout: CkptLayout, work_dir: Path, job: CommitJob, drop_best: bool
    ) -> tuple[Path, Mapping[str, FileEntry], bool]:
        """Write ``job``'s files into ``work_dir`` and commit them on ``layout``: the epoch's
        directory, its files table, whether a best link was there before."""
        with commit.writing(layout, work_dir, self.lease.fence) as work:
            try:
                if job.snapshot is None:
                    self.backend.write_model(work, job.epoch)
                    files: Mapping[str, FileEntry] = self.last_files
                else:
                    files = self.backend.write_snapshot(job.snapshot, work)
            except OSError as exc:  # a full disk, a quota, a vanished mount: last and best are untouched
                why = commit.why_failed(exc, self.lease.fence)
                raise CommitError(str(work), None, f"writing the checkpoint of epoch {job.epoch} failed: {why}") from exc
            info = with_files(job.info, files)
            had_best = layout.best.is_symlink()
            target = commit.commit(
                layout, job.epoch, info, best=job.best, drop_best=drop_best, work=work, fence=self.lease.fence
            )
        return target, files, had_best

    def _result(
        self, job: CommitJob, target: Path, files: Mapping[str, FileEntry], deleted: tuple[int, ...]
    ) -> CommitResult:
        job.pending.committed(target)  # "a checkpoint committed": its event
        nbytes = sum(e.size for e in files.values())
        seconds = self.pacer.clock() - job.started
        return CommitResult(job.epoch, target, seconds, nbytes, model_crc(files, job.info.model_file), deleted)

    def _say_links(self, layout: CkptLayout, work: Path, target: Path, job: CommitJob, dropped_best: bool) -> None:
        relpath, debug = self.relpath, self.logs.debug
        debug(f"rename:  '{relpath(work)}' -> '{relpath(target)}'")
        if job.best:
            debug(f"linking: '{relpath(layout.best)}' -> '{layout.link_target(job.epoch)}'")
        elif dropped_best:
            debug(f"removing: '{relpath(layout.best)}' (an earlier run's; this run has no best yet)")
        debug(f"linking: '{relpath(layout.last)}' -> '{layout.link_target(job.epoch)}'")

    def apply(self, result: CommitResult | None) -> None:
        """Record a finished commit (training thread); None: nothing finished since the last call."""
        if result is None:
            return
        self.committed(result)

    def committed(self, result: CommitResult) -> None:
        """A checkpoint committed (``result``: epoch, path, seconds, bytes), seen by the training thread."""
        self.links_own = True  # last (and best) are this run's now
        if result.epoch not in self.epochs:
            self.epochs.append(result.epoch)
        self.forget(result.deleted)
        self.cksum_model = result.model_crc or DISABLED
        self.pacer.committed(
            self.pacer.clock() - result.seconds
        )  # its longest commit, measured by the thread

    def forget(self, deleted: tuple[int, ...] | list[int]) -> None:
        """Drop deleted epochs from ``epochs``."""
        self.epochs[:] = [e for e in self.epochs if e not in deleted]

    # ----- waiting --------------------------------------------------------------------------
    def poll(self) -> None:
        """Record a background commit that finished, or raise its failure (never blocks)."""
        self.committer.raise_failure()
        self.apply(self.committer.poll())

    def waiting_for_commit(self) -> None:
        """Wait for the commit in flight (before a stop or the exit), record it or raise its failure.

        With two tiers, then for the newest checkpoint to reach the shared tier (`Drainer.flush`):
        drains publish under the writer lease, so they end before it is given back.
        """
        started = time.monotonic()
        if self.in_training:
            HEARTBEAT.beat("commit")
        try:
            self.apply(self.committer.wait())
            if self.drainer is not None:
                self.drainer.flush()
        finally:
            if self.in_training:
                self.pacer.waited(time.monotonic() - started)
                HEARTBEAT.beat("step")

    def protected(self) -> set[int]:
        """Epochs no keep policy may delete besides the newest: ``last`` once it is this run's, and
        this run's best epoch while ``ckpt_save_best`` is on (CANDLE's ``keep``)."""
        protect = set()
        if self.settings.save_best and self.best.epoch:
            protect.add(self.best.epoch)
        if self.links_own:
            linked = self.layout.linked_epoch(self.layout.last)
            if linked is not None:
                protect.add(linked)
        return protect
