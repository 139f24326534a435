"""`CandleCkpt`: CANDLE's framework-neutral checkpoint logic, with CANDLE's method names.

A backend (``candle_restart.keras.CandleCkptKeras``) subclasses this and
supplies `write_model_backend` (write the model into ``work/``) and
`build_model` (load it back).  Everything else lives here and is the same
for every framework: parameter scanning, the save decision, the best-metric
bookkeeping, the commit through `candle_restart.ckpt.commit`, keep
policies (`candle_restart.ckpt.candle_keep`), checksums, ``ckpt-info.json``
and restart (`candle_restart.ckpt.candle_restore`).

Method names, arguments and log lines are CANDLE's (client tools grep the
log); the defects the foundation issue lists are fixed behind them.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import time
import weakref
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from candle_restart.ckpt import commit
from candle_restart.ckpt.background import BackgroundCommit
from candle_restart.ckpt.candle_keep import CandleKeepMethods
from candle_restart.ckpt.candle_params import CandleParamMethods
from candle_restart.ckpt.candle_restore import CandleRestartMethods
from candle_restart.ckpt.checksum import ALGORITHM, DISABLED, checksum_file, list_files
from candle_restart.ckpt.envparams import with_environment
from candle_restart.ckpt.events import EpochEvents
from candle_restart.ckpt.info import (
    FIRST,
    SCHEMA_VERSION,
    finite_or_none,
    timestamp,
    writer_identity,
)
from candle_restart.ckpt.layout import CkptLayout, candle_root
from candle_restart.ckpt.lease import Lease, drop_shared, hold_shared
from candle_restart.ckpt.log import make_logger, release_console
from candle_restart.ckpt.pacing import Pacer
from candle_restart.ckpt.params import CkptParams, check_writable, parse_params, unknown_ckpt_keys
from candle_restart.ckpt.sink import CheckpointFiles, Snapshot
from candle_restart.errors import CommitError, ParamError

STATE_FILE = "train_state.npz"


class CandleCkpt(CandleParamMethods, CandleKeepMethods, CandleRestartMethods):
    """CANDLE's checkpoint callback logic without a framework (see module docstring)."""

    model_file_name = "model.keras"
    # True: checkpoints go to <ckpt_directory>/ckpts/ as CANDLE's callbacks put them (the older API).
    ckpts_subdirectory = False

    def __init__(
        self, gParameters: dict[str, Any] | None = None, logger: Any = "DEFAULT", verbose: bool = True
    ) -> None:
        self._model: Any = None
        self.gParams: dict[str, Any] = {}
        self.verbose = verbose
        self.scan_params(gParameters if gParameters is not None else {"epochs": 0})
        check_writable(self.layout.root)
        if logger == "DEFAULT":
            logger = make_logger(self, self.layout.log, verbose, self.settings.stdout_format)
        self.logger: logging.Logger | None = logger
        self.events = EpochEvents.of(self.settings, self.layout.root, self.warning)  # ckpts/events.jsonl
        self.epochs: list[int] = []  # epochs this instance committed, ascending
        # The best epoch of this run (set by save_check_best) or of the checkpoint it restarted from.
        self.epoch_best: int = 0
        # Whether last/best name this run's checkpoints: True once a restart loaded one or this
        # instance committed; until then they are an earlier run's debris (a fresh start).
        self.links_own = False
        self.best_mode: str | None = None  # "min" or "max" once a best was checked
        self.timestamp_last: datetime | None = None
        self.cksum_model = DISABLED
        self._files: dict[str, dict[str, Any]] = {}
        self.last_save_time = time.monotonic()
        self.resume_position: dict[str, int] | None = None  # set by restart() from a mid-epoch checkpoint
        self.saving_position: dict[str, int] | None = None  # the position of the checkpoint being written
        self.restart_done = False  # restart() ran; its result is in self.restarted
        self.restarted: dict[str, Any] | None = None
        # Files of the checkpoint being restored whose CRC-32 restart checked.
        self.verified_files: set[str] = set()
        # Set by the backend's training hooks: commits run in the background only then.
        self.in_training = False
        # Runs the background commits; keeps their CPU and wait totals.
        self.committer = BackgroundCommit(self.info)
        # The checkpoint interval and the halt before the walltime (candle_restart.ckpt.pacing).
        self.pacer = Pacer(self.settings, self.info, self.debug)
        # The writer lease of ckpt_directory: taken by restart() or the first save, until release_writer().
        self._writer: Lease | None = None
        self._drop_writer: weakref.finalize | None = None
        self.work_dir = self.layout.work_dir(f"{os.getpid()}-{secrets.token_hex(3)}")
        self.report_initial()
        self.warn_unknown_keys()

    # ----- parameters -------------------------------------------------------------------
    def scan_params(self, gParams: dict[str, Any]) -> None:
        """Validate gParameters into fields; the caller's dict is copied, never mutated.

        Keys gParameters lacks are taken from ``CANDLE_RESTART_PARAMS``
        (see `candle_restart.ckpt.envparams`).
        """
        gParams = with_environment(gParams)
        settings = parse_params(gParams)
        self.gParams = gParams
        self.settings: CkptParams = settings
        self.epoch_max = settings.epochs
        self.skip_epochs = settings.skip_epochs
        self.ckpt_directory = settings.directory
        root = candle_root(settings.directory) if self.ckpts_subdirectory else settings.directory
        self.layout = CkptLayout.at(root)
        self.save_best = settings.save_best
        self.save_best_metric = settings.save_best_metric
        self.save_interval = settings.save_interval
        self.save_weights_only = settings.save_weights_only
        self.checksum_enabled = settings.checksum
        self.keep_mode = settings.keep_mode
        self.keep_limit = settings.keep_limit
        self.metadata = settings.metadata
        self.best_metric_last: float | None = settings.best_metric_last
        self.cwd = os.getcwd()

    # ----- logging ------------------------------------------------------------------------
    def info(self, message: str) -> None:
        if self.logger is not None:
            self.logger.info(message)

    def debug(self, message: str) -> None:
        if self.logger is not None:
            self.logger.debug(message)

    def warning(self, message: str) -> None:
        if self.logger is not None:
            self.logger.warning(message)

    def warn_unknown_keys(self) -> None:
        """A warning per ``ckpt_*`` key of gParameters that nothing reads (a typo, most likely).

        Keys without the ``ckpt_`` prefix are the benchmark's own: accepted silently, as CANDLE did.
        """
        for key, close in unknown_ckpt_keys(self.gParams):
            hint = f"; did you mean {close}?" if close else ""
            self.warning(f"gParameters: {key}: is not a checkpoint key and is ignored{hint}")

    def relpath(self, p: Path | str) -> Path:
        """``p`` relative to the working directory when it lies below it, else unchanged."""
        path = Path(p)
        try:
            return path.relative_to(self.cwd)
        except ValueError:
            return path

    def report_initial(self) -> None:
        """Simply report that we are ready to run."""
        self.info("Callback initialized.")
        if self.save_interval == 0:
            self.info("Checkpoint save interval == 0 -> checkpoints are disabled.")
            return
        if self.metadata is not None:
            self.info(f"metadata='{self.metadata}'")
        if self.save_best:
            self.info(f"save_best_metric='{self.save_best_metric}'")
        self.info("PWD: " + os.getcwd())
        self.info(f"ckpt_directory: {self.layout.root}")

    def report_final(self) -> None:
        """CANDLE's closing lines: the checkpoints this instance wrote that are still kept."""
        self.release_console()
        self.info(f"checkpoints kept: {len(self.epochs)}")
        self.info(f"checkpoints list: {self.epochs}")

    def release_console(self) -> None:
        """Print the log lines a background commit held back (call where no progress line is open)."""
        release_console(self.logger)

    # ----- saving ---------------------------------------------------------------------------
    def ckpt_epoch(
        self, epoch: int, direction: str, metric_value: float | None, logs: Mapping[str, object] | None = None
    ) -> bool:
        """Checkpoint after 0-based ``epoch`` if the policy says so (CANDLE's procedure, made atomic).

        ``metric_value`` None: the metric is missing from this epoch's logs (no best check).
        ``logs``: every metric of the epoch, for its event in ``events.jsonl``.

        Returns whether a checkpoint was taken (CANDLE's returned None).
        """
        epoch = int(epoch) + 1
        self.events.epoch_end(epoch, metric_value, direction, logs)
        self.pacer.epoch_end()  # may record a halt before the walltime (REQUEST): the caller stops
        if not self.save_check(epoch, direction, metric_value):
            return False
        self.save_epoch(epoch)
        return True

    def save_epoch(self, epoch: int, position: dict[str, int] | None = None) -> Path:
        """Checkpoint ``epoch``: the one path every checkpoint takes; returns its directory.

        ``epoch`` is the 1-based epoch the checkpoint belongs to (its directory
        name); ``position`` is None at an epoch end, else ``{"epoch": epoch,
        "batch": batches of it done}`` for a checkpoint taken inside it.

        When the backend can snapshot its state (`snapshot_model`),
        ``ckpt_async`` is on and a training is running (`in_training`: the
        backend's hooks then raise a failed commit's error in the training
        thread), this returns once the snapshot is in memory and a background
        thread writes and commits it (see `candle_restart.ckpt.background`);
        `wait_for_commit` waits for it.  Otherwise (a script calling
        `ckpt_epoch` from its own loop, say) the checkpoint is committed, or its
        error raised, when this returns.
        """
        started = self.pacer.saving()
        pending = self.events.saving(epoch, position, self.epoch_best == epoch, epoch >= self.epoch_max)
        self.saving_position = position
        self.committer.wait()  # one snapshot in flight at most; raises an earlier commit's failure
        self.hold_writer()
        snapshot = self.snapshot_model(epoch)
        info = self.ckpt_info(epoch, position, files={})
        is_best = position is None and self.epoch_best == epoch
        # A fresh start's first commit takes last and best over: a best link left by an earlier run goes.
        drop_best = not is_best and not self.links_own
        self.last_save_time = time.monotonic()

        def write_and_commit() -> None:
            pending.writing()
            try:
                self._write_and_commit(epoch, snapshot, info, is_best, drop_best)
                self.pacer.committed(started)
                pending.committed()
            finally:
                if snapshot is not None:
                    snapshot.discard()

        if snapshot is not None and self.settings.async_commit and self.in_training:
            self.committer.start(f"epoch {epoch}", write_and_commit)
        else:
            write_and_commit()
        self.pacer.saved()
        return self.layout.epoch_dir(epoch)

    def wait_for_commit(self) -> None:
        """Return once no checkpoint is being written; raise the error of a failed background commit.

        Outside a training, the log lines the commit held back are printed too.
        """
        started = time.monotonic()
        try:
            self.committer.wait()
        finally:
            if self.in_training:
                self.pacer.waited(time.monotonic() - started)
            else:
                self.release_console()

    def hold_writer(self) -> Lease:
        """Hold the writer lease of ``ckpt_directory`` (see `candle_restart.ckpt.lease`).

        Raises `LeaseBusy`, naming the holder, when another live process
        writes this directory; nothing was touched then.
        """
        if self._writer is None:
            what = f"the checkpoint writer of {self.layout.root}"
            self._writer = hold_shared(self.layout.writer_lock, what, log=self.info)
            self._drop_writer = weakref.finalize(self, drop_shared, self._writer)
        return self._writer

    def release_writer(self) -> None:
        """Give up the writer lease (waits for the commit in flight first); the next save takes it again."""
        try:
            self.committer.wait()
        finally:
            if self._drop_writer is not None:
                self._drop_writer()
            self._writer, self._drop_writer = None, None

    def _fence(self) -> None:
        """The commit protocol's fence: raise `LeaseLost` unless the writer lease is still this process's."""
        if self._writer is None:
            raise CommitError(str(self.layout.root), None, "the writer lease is not held; not committing")
        self._writer.check()

    def _write_and_commit(
        self, epoch: int, snapshot: Snapshot | None, info: dict[str, Any], best: bool, drop_best: bool = False
    ) -> None:
        """Write ``work/``, commit it as ``epochs/NNN`` and apply the keep policy (any thread)."""
        work = commit.begin(self.layout, self.work_dir)
        try:
            if snapshot is None:
                self.write_model(work, epoch)
                files = self._files
            else:
                files = self.write_snapshot(snapshot, work)
        except OSError as exc:  # a full disk, a quota, a vanished mount: last and best are untouched
            raise CommitError(
                str(work), None, f"writing the checkpoint of epoch {epoch} failed: {exc}"
            ) from exc
        info = {**info, **self._file_fields(files)}
        had_best = self.layout.best.is_symlink()
        target = commit.commit(
            self.layout, epoch, info, best=best, drop_best=drop_best, work=work, fence=self._fence
        )
        self.links_own = True  # last (and best) are this run's now; a failed commit left them as they were
        self.debug(f"rename:  '{self.relpath(work)}' -> '{self.relpath(target)}'")
        if best:
            self.debug(f"linking: '{self.relpath(self.layout.best)}' -> '{self.layout.link_target(epoch)}'")
        elif drop_best and had_best:
            self.debug(f"removing: '{self.relpath(self.layout.best)}' (an earlier run's; this run has no best yet)")
        self.debug(f"linking: '{self.relpath(self.layout.last)}' -> '{self.layout.link_target(epoch)}'")
        if epoch not in self.epochs:
            self.epochs.append(epoch)
        self.clean(epoch)

    def save_midepoch(self, epoch_index: int, batches_done: int) -> Path:
        """Commit a checkpoint inside 0-based ``epoch_index`` after ``batches_done`` of its batches."""
        epoch = int(epoch_index) + 1
        self.info(f"writing mid-epoch checkpoint: epoch {epoch} batch {batches_done} ...")
        return self.save_epoch(epoch, {"epoch": epoch, "batch": int(batches_done)})

    def save_check(self, epoch: int, direction: str, metric_value: float | None) -> bool:
        """Should 1-based ``epoch`` be saved?  Updates the best epoch as a side effect (as CANDLE's)."""
        if self.save_interval == 0:
            return False
        if epoch < self.skip_epochs:
            self.debug(f"model saving disabled until epoch {self.skip_epochs}")
            self.events.disabled(epoch, self.skip_epochs)
            return False
        if self.save_check_best(epoch, direction, metric_value):
            self.epoch_best = epoch
            return True
        if epoch == self.epoch_max:
            self.info(f"writing final epoch {epoch} ...")
            return True
        if epoch % self.save_interval == 0:
            return True
        self.debug("not writing this epoch.")
        return False

    def save_check_best(self, epoch: int, direction: str, metric_value: float | None) -> bool:
        """True if ``metric_value`` improves on the running best in ``direction`` ("+" or "-").

        None (the metric is missing from this epoch's logs) and NaN never improve.
        """
        if not self.save_best or metric_value is None:
            return False
        if direction not in ("+", "-"):
            raise ParamError(
                "gParameters", "ckpt_save_best_mode", f"direction must be '+' or '-', got {direction!r}"
            )
        value = float(metric_value)
        last = self.best_metric_last
        if last is None:
            last = math.inf if direction == "-" else -math.inf
        symbol = "<" if value < last else ">" if value > last else "="
        self.debug(f"metrics: {self.save_best_metric}: current={value:f} {symbol} last={last:f}")
        self.best_mode = "min" if direction == "-" else "max"
        improved = value < last if direction == "-" else value > last
        if improved and math.isfinite(value):
            self.best_metric_last = value
            self.epoch_best = epoch
            return True
        return False

    def snapshot_model(self, epoch: int) -> Snapshot | None:
        """Capture the model in memory for a later `Snapshot.write`; None if the backend cannot.

        The default is None: the backend writes synchronously through
        `write_model_backend`, and the checkpoint is checksummed by reading
        its files back.
        """
        return None

    def write_snapshot(self, snapshot: Snapshot, dir_work: Path) -> dict[str, dict[str, Any]]:
        """Write ``snapshot`` into ``dir_work``, checksummed in the same pass; the ``files`` table."""
        self.model_file = Path(dir_work) / snapshot.model_file
        self.debug(f"writing model to: '{self.relpath(self.model_file)}'")
        start = time.perf_counter()
        files = CheckpointFiles(Path(dir_work), self.checksum_enabled)
        try:
            snapshot.write(files)
            table = files.finish()
        except BaseException:
            files.abort()
            raise
        duration = max(time.perf_counter() - start, 1e-9)
        megabytes = files.nbytes / (1024 * 1024)
        for name, sink in files.sinks.items():
            stats = sink.stats
            if stats is not None:
                self.info(stats.log_line())
                if name == snapshot.model_file:
                    self.cksum_model = stats.value
        self.debug(
            f"model wrote: {megabytes:0.3f} MB in {duration:0.3f} seconds ({megabytes / duration:0.2f} MB/s)."
        )
        return table

    def write_model(self, dir_work: Path, epoch: int) -> None:
        """Write the model into ``dir_work`` through the backend, report stats, checksum."""
        dir_work = Path(dir_work)
        self.model_file = dir_work / self.model_file_name
        self.debug(f"writing model to: '{self.relpath(self.model_file)}'")
        start = time.perf_counter()
        self.write_model_backend(self.model, epoch)
        duration = max(time.perf_counter() - start, 1e-9)
        megabytes = sum(p.stat().st_size for p in dir_work.rglob("*") if p.is_file()) / (1024 * 1024)
        self.debug(
            f"model wrote: {megabytes:0.3f} MB in {duration:0.3f} seconds ({megabytes / duration:0.2f} MB/s)."
        )
        self.checksum(dir_work)

    def write_model_backend(self, model: Any, epoch: int) -> None:
        raise NotImplementedError("a backend must write the model into self.model_file")

    def checksum(self, dir_work: Path) -> None:
        """Record size (always) and CRC-32 (when ``ckpt_checksum``) of every file in ``dir_work``."""
        self._files = {}
        self.cksum_model = DISABLED
        for name in list_files(Path(dir_work)):
            path = Path(dir_work) / name
            entry: dict[str, Any] = {"size": path.stat().st_size, ALGORITHM: None}
            if self.checksum_enabled:
                entry[ALGORITHM] = self.checksum_file(path)
                if name == self.model_file_name:
                    self.cksum_model = entry[ALGORITHM]
            self._files[name] = entry

    def checksum_file(self, filename: Path | str) -> str:
        """Read file, compute checksum, return it as a string."""
        stats = checksum_file(Path(filename))
        self.info(stats.log_line())
        return stats.value

    def ckpt_info(
        self,
        epoch: int,
        position: dict[str, int] | None = None,
        files: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The ``ckpt-info.json`` dict for ``epoch`` (see `candle_restart.ckpt.info`).

        ``files`` is the per-file table (default: the last `checksum` pass).
        """
        fields = self._file_fields(self._files if files is None else files)
        now = datetime.now()
        elapsed: Any = FIRST if self.timestamp_last is None else (now - self.timestamp_last).total_seconds()
        self.timestamp_last = now
        return {
            "epoch": epoch if position is None else epoch - 1,  # epochs finished: fit's initial_epoch
            "save_best_metric": self.save_best_metric,
            "best_metric_last": finite_or_none(self.best_metric_last),
            "model_file": self.model_file_name,
            "checksum": fields["checksum"],
            "timestamp": timestamp(now),
            "time_elapsed": elapsed,
            "metadata": self.metadata,
            "schema_version": SCHEMA_VERSION,
            "epochs": self.epoch_max,
            "complete": position is None and epoch >= self.epoch_max,
            "best_epoch": self.epoch_best or None,
            "best_mode": self.best_mode,
            "position": position,
            "state_file": fields["state_file"],
            "files": fields["files"],
            "writer": writer_identity(),
        }

    def _file_fields(self, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The keys of ``ckpt-info.json`` that follow from the per-file table."""
        crc = files.get(self.model_file_name, {}).get(ALGORITHM)
        return {
            "checksum": crc or DISABLED,
            "state_file": STATE_FILE if STATE_FILE in files else None,
            "files": files,
        }

    def write_json(self, jsonfile: Path | str, epoch: int) -> None:
        """Write ``ckpt-info.json`` for ``epoch`` to ``jsonfile`` atomically (CANDLE's entry point)."""
        from candle_restart.ckpt.fsio import atomic_write_bytes
        from candle_restart.ckpt.info import dumps

        atomic_write_bytes(Path(jsonfile), dumps(self.ckpt_info(epoch)))

    # ----- restart -------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        return self._model

    def set_model(self, model: Any) -> None:
        self._model = model

    def build_model(self, model_file: Path | str) -> None:
        raise NotImplementedError("a backend must load the checkpoint into self.model")
