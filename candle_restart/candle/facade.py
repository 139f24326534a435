"""`CandleCkpt`: CANDLE's framework-neutral checkpoint callback, a facade over the engine.

Every method and attribute CANDLE's ``candle.ckpt_utils.CandleCkpt`` documents
is here under its name; each delegates to one collaborator of
`candle_restart.ckpt.engine.CkptEngine` (writer, committer, keeper, best
tracker, pacer) or to `candle_restart.ckpt.restarter.Restorer`, which own
the state.  A backend (``candle_restart.keras.CandleCkptKeras``) subclasses
this and supplies `write_model_backend` (write the model into ``work/``),
`build_model` (load it back) and, to commit in the background,
`snapshot_model`.

Method names, arguments and log lines are CANDLE's (client tools grep the
log); the defects the foundation issue lists are fixed behind them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from candle_restart.candle.attrs import CandleAttributes
from candle_restart.candle.log import CandleLogMethods
from candle_restart.candle.params import CandleParamMethods
from candle_restart.ckpt.drain import local_root
from candle_restart.ckpt.engine import CkptEngine
from candle_restart.ckpt.envparams import with_environment
from candle_restart.ckpt.layout import TRAIN_STATE_FILE, CkptLayout, candle_root
from candle_restart.ckpt.log import make_logger
from candle_restart.ckpt.params import CkptParams, check_writable, parse_params
from candle_restart.ckpt.policy import EpochVerdict, SavePolicy
from candle_restart.ckpt.restarter import CandleDict, Restorer
from candle_restart.ckpt.sink import Snapshot
from candle_restart.records.ckptinfo import CkptInfo, FileEntry, Position
from candle_restart.runtime.fsio import atomic_write_bytes
from candle_restart.runtime.lease import Lease

__all__ = ["TRAIN_STATE_FILE", "CandleCkpt"]

# A benchmark's gParameters: CANDLE's free-form dict, read by benchmark code as it pleases.
GParams = dict[str, Any]


class CandleCkpt(CandleAttributes, CandleLogMethods, CandleParamMethods):
    """CANDLE's checkpoint callback logic without a framework (see the module docstring)."""

    model_file_name = "model.keras"
    # True: checkpoints go to <ckpt_directory>/ckpts/ as CANDLE's callbacks put them (the older API).
    ckpts_subdirectory = False

    def __init__(
        self,
        gParameters: GParams | None = None,
        logger: logging.Logger | str | None = "DEFAULT",
        verbose: bool = True,
    ) -> None:
        self._model: object = None
        self.gParams: GParams = {}
        self.verbose = verbose
        self.model_file: Path | None = (
            None  # the model file being written (CANDLE's write_model_backend target)
        )
        self.scan_params(gParameters if gParameters is not None else {"epochs": 0})
        check_writable(self.shared_layout.root)
        if self.layout != self.shared_layout:
            check_writable(self.layout.root, "ckpt_local_directory")
        if logger == "DEFAULT":  # ckpt.log is on the shared tier
            logger = make_logger(self, self.shared_layout.log, verbose, self.settings.stdout_format)
        self.logger: logging.Logger | None = logger if isinstance(logger, logging.Logger) else None
        self.report_initial()
        self.warn_unknown_keys()

    # ----- parameters -------------------------------------------------------------------
    def scan_params(self, gParams: GParams) -> None:
        """Validate gParameters into fields (and a fresh engine); the caller's dict is copied, never mutated.

        Keys gParameters lacks are taken from ``CANDLE_RESTART_PARAMS``
        (see `candle_restart.ckpt.envparams`).
        """
        gParams = with_environment(gParams)
        settings = parse_params(gParams)
        self.gParams = gParams
        self.settings: CkptParams = settings
        self.epoch_logs: Mapping[str, object] | None = None  # the metrics of the epoch ckpt_epoch is told of
        root = candle_root(settings.directory) if self.ckpts_subdirectory else settings.directory
        # Two tiers (ckpt_local_directory): commits, restart and keep on the node-local tier
        # (layout); ckpt.log, the writer lease, events.jsonl and the drained copies on shared_layout.
        self.layout = self.shared_layout = CkptLayout.at(root)
        if settings.local_directory is not None:
            self.layout = CkptLayout(local_root(settings.local_directory, self.shared_layout.root))
        self.cwd = os.getcwd()
        # The engine calls this object only through its framework hooks (Backend) and its log
        # (Logs: CANDLE's info/debug/warning, which a subclass or a test may replace).
        self.engine = engine = CkptEngine(
            settings, self.layout, self, self.shared_layout, logs=self, relpath=self.relpath
        )
        self.restorer = Restorer(
            self.layout, settings.directory, settings.restart_mode, engine.events, engine.drainer, engine.lease.fence
        )

    # ----- logging (the rest in log.py) ----------------------------------------------
    def report_final(self) -> None:
        """CANDLE's closing lines: the checkpoints this instance wrote that are still kept."""
        self.release_console()
        self.info(f"checkpoints kept: {len(self.epochs)}")
        self.info(f"checkpoints list: {self.epochs}")

    # ----- saving ---------------------------------------------------------------------------
    def ckpt_epoch(self, epoch: int, direction: str, metric_value: float | None) -> bool:
        """Checkpoint after 0-based ``epoch`` if the policy says so (CANDLE's procedure, made atomic).

        ``metric_value`` None: the metric is missing from this epoch's logs (no best check).
        ``epoch_logs`` (set by a backend before the call, then cleared): every metric of the epoch,
        for its event in ``events.jsonl`` (CANDLE's signature has no place for them).
        Returns whether a checkpoint was taken (CANDLE's returned None).
        """
        epoch = int(epoch) + 1
        logs, self.epoch_logs = self.epoch_logs, None
        self.engine.events.epoch_end(epoch, metric_value, direction, logs)
        self.engine.epoch_ended(epoch)  # "an epoch ended"; may record a halt (REQUEST): the caller stops
        if not self.save_check(epoch, direction, metric_value):
            return False
        self.save_epoch(epoch)
        return True

    def save_epoch(self, epoch: int, position: dict[str, int] | None = None) -> Path:
        """Checkpoint 1-based ``epoch``: the one path every checkpoint takes; returns its directory.

        ``position`` is None at an epoch end, else ``{"epoch": epoch, "batch":
        batches of it done}``.  In the background (returns once the snapshot is
        in memory; `wait_for_commit` waits) when the backend can `snapshot_model`,
        ``ckpt_async`` is on and a training runs (`in_training`); otherwise the
        checkpoint is committed, or its error raised, when this returns.
        """
        at = None if position is None else Position(int(position["epoch"]), int(position["batch"]))
        return self.engine.save(int(epoch), at)

    def save_midepoch(self, epoch_index: int, batches_done: int) -> Path:
        """Commit a checkpoint inside 0-based ``epoch_index`` after ``batches_done`` of its batches."""
        epoch = int(epoch_index) + 1
        self.info(f"writing mid-epoch checkpoint: epoch {epoch} batch {batches_done} ...")
        return self.save_epoch(epoch, {"epoch": epoch, "batch": int(batches_done)})

    def wait_for_commit(self) -> None:
        """Return once no checkpoint is being written; raise the error of a failed background commit.

        Outside a training, the log lines the commit held back are printed too.
        """
        try:
            self.engine.waiting_for_commit()
        finally:
            if not self.in_training:
                self.release_console()

    def hold_writer(self) -> Lease:
        """Hold the writer lease of ``ckpt_directory``; `LeaseBusy` (nothing touched) when another process writes it."""
        return self.engine.lease.hold()

    def release_writer(self) -> None:
        """Give up the writer lease (waits for the commit in flight first); the next save takes it again."""
        try:
            self.engine.waiting_for_commit()
        finally:
            self.engine.lease.release()

    def save_check(self, epoch: int, direction: str, metric_value: float | None) -> bool:
        """Should 1-based ``epoch`` be saved (`SavePolicy.epoch_end`)?  Updates the best epoch as a
        side effect (as CANDLE's)."""
        verdict = SavePolicy.epoch_end(
            self.settings, epoch, lambda: self.save_check_best(epoch, direction, metric_value)
        )
        if verdict is EpochVerdict.SKIPPED:
            self.debug(f"model saving disabled until epoch {self.skip_epochs}")
            self.engine.events.disabled(epoch, self.skip_epochs)
        elif verdict is EpochVerdict.FINAL:
            self.info(f"writing final epoch {epoch} ...")
        elif verdict is EpochVerdict.NOT_DUE:
            self.debug("not writing this epoch.")
        return verdict.save

    def save_check_best(self, epoch: int, direction: str, metric_value: float | None) -> bool:
        """True if ``metric_value`` improves on the running best in ``direction`` ("+" or "-").

        None (the metric is missing from this epoch's logs) and NaN never improve.
        """
        return self.engine.best.check(epoch, direction, metric_value, self.debug)

    # ----- writing the model -----------------------------------------------------------------
    def snapshot_model(self, epoch: int) -> Snapshot | None:
        """Capture the model in memory for a later `Snapshot.write`; None if the backend cannot.

        The default is None: the backend writes synchronously through
        `write_model_backend`, and the checkpoint is checksummed by reading
        its files back.
        """
        return None

    def write_snapshot(self, snapshot: Snapshot, dir_work: Path) -> dict[str, FileEntry]:
        """Write ``snapshot`` into ``dir_work``, checksummed in the same pass; the ``files`` table (any thread)."""
        return self.engine.writer.write_snapshot(snapshot, Path(dir_work))

    def write_model(self, dir_work: Path, epoch: int) -> None:
        """Write the model into ``dir_work`` through the backend, report stats, checksum."""
        dir_work = Path(dir_work)
        model_file = self.model_file = dir_work / self.model_file_name
        self.engine.writer.write_with_backend(model_file, lambda: self.write_model_backend(self.model, epoch))
        self.checksum(dir_work)

    def write_model_backend(self, model: object, epoch: int) -> None:
        raise NotImplementedError("a backend must write the model into self.model_file")

    def checksum(self, dir_work: Path) -> None:
        """Record size (always) and CRC-32 (when ``ckpt_checksum``) of every file in ``dir_work``."""
        self.engine.last_files = self.engine.writer.checksum_dir(Path(dir_work))

    def checksum_file(self, filename: Path | str) -> str:
        """Read file, compute checksum, return it as a string."""
        return self.engine.writer.checksum_file(Path(filename))

    def ckpt_info(self, epoch: int, position: Position | None = None) -> CkptInfo:
        """The ``ckpt-info.json`` record of ``epoch`` with the files of the last `checksum` pass."""
        engine = self.engine
        return engine.writer.describe(
            epoch,
            position,
            model_file=self.model_file_name,
            best=engine.best,
            epochs=self.epoch_max,
            metadata=self.metadata,
            files=engine.last_files,
        )

    def write_json(self, jsonfile: Path | str, epoch: int) -> None:
        """Write ``ckpt-info.json`` for ``epoch`` to ``jsonfile`` atomically (CANDLE's entry point)."""
        atomic_write_bytes(Path(jsonfile), self.ckpt_info(epoch).to_bytes())

    # ----- keep policy ----------------------------------------------------------------------
    def clean(self, epoch_now: int) -> tuple[int, int]:
        """Delete the checkpoints the keep policy drops; never ``epoch_now``, ``last`` or this run's best.

        Returns (kept, deleted).
        """
        deleted = self.engine.keeper.clean(epoch_now, self.engine.protected())
        self.engine.forget(deleted)
        return len(self.layout.list_epochs()), len(deleted)

    def keep(self, epoch: int, epoch_now: int, kept: int) -> bool:
        """CANDLE's per-epoch question: keep ``epoch`` when ``kept`` newer ones are already kept?"""
        return self.engine.keeper.keep(epoch, epoch_now, self.engine.protected())

    def delete(self, epoch: int) -> None:
        """Remove ``epochs/NNN`` (crash-safely, and never outside ``epochs/``)."""
        self.engine.keeper.delete(epoch)
        self.engine.forget([epoch])

    def symlink(self, src: Path | str, dst: Path | str) -> None:
        """Point link ``dst`` at ``src`` atomically, relative to ``dst``'s directory."""
        self.engine.keeper.symlink(src, dst)

    # ----- restart -------------------------------------------------------------------------------
    def restart(self, model: object, verbose: bool = True) -> CandleDict | None:
        """Load the newest checkpoint that verifies into ``model``; return its ``ckpt-info.json`` or None."""
        self.engine.events.restoring()  # the restart event records how long this took
        return self.restorer.restart(self, model, self.hold_writer)

    def restart_json(self, directory: Path | str) -> CandleDict:
        """Read ``directory/ckpt-info.json`` and restore the best-metric bookkeeping from it."""
        info = self.restorer.read(directory, self)
        self.adopt_restart(info)
        return info.to_dict()

    def adopt_restart(self, info: CkptInfo) -> None:
        """Take the best-metric bookkeeping and mid-epoch position of a restored checkpoint.

        The best epoch is the checkpoint's ``best_epoch`` (None: it had no best).
        Only a checkpoint CANDLE wrote (no ``best_epoch`` key) takes it from the
        ``best`` link, and only a link to an epoch it had finished by then.
        """
        self.engine.best.adopt(info, lambda: self.layout.linked_epoch(self.layout.best))
        self.restorer.resume_position = info.position
        self.engine.links_own = True

    @property
    def model(self) -> object:
        return self._model

    def set_model(self, model: object) -> None:
        self._model = model

    def build_model(self, model_file: Path | str) -> None:
        raise NotImplementedError("a backend must load the checkpoint into self.model")
