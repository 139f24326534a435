"""`CandleCkptKeras`: CANDLE's Keras checkpoint callback, for Keras 3, durable and exact.

Drop-in for ``candle.ckpt_keras_utils.CandleCkptKeras`` (same constructor,
methods, gParameters keys, directory layout, ``ckpt-info.json`` keys and log
lines).  Each checkpoint holds the model file (``model.keras``, loadable with
``keras.models.load_model``; ``model.weights.h5`` with
``ckpt_save_weights_only``) and ``train_state.npz`` (seed-generator state and
where the model file holds the weights and optimizer state), which `restart`
loads so training resumes bit-for-bit; ``callbacks.json`` carries the
state of the other callbacks of the ``fit`` (`candle_restart.keras.cbstate`).  The generic logic is in `candle_restart.candle.facade.CandleCkpt`.

Preemption: during ``fit`` the callback arms the ``ckpt_signals`` (see
`candle_restart.runtime.preempt`).  At the first batch end after such a signal
it commits a mid-epoch checkpoint and raises `Preempted` (exit code 75);
``ckpt_save_seconds``, ``ckpt_save_batches`` and ``ckpt_overhead_target``
add mid-epoch checkpoints, and the walltime, once known, is a request to stop
like a signal (`candle_restart.ckpt.pacing`).  Resuming
from a mid-epoch checkpoint continues at the next batch only under
`candle_restart.keras.fit`; a plain ``model.fit(initial_epoch=...)`` reruns
that epoch from its first batch, and the log says so.

Restart before or after ``model.compile`` (CANDLE's benchmarks and docs
restart before): weights and seed state are assigned at once; optimizer
state, when the model has no optimizer yet, is applied at the start of the
next training by any `CandleCkptKeras` in its callbacks (so the throwaway
instance of the older ``restart(gParameters, model)`` loses nothing; that
instance's best-metric bookkeeping is handed over the same way).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from candle_restart.candle.facade import CandleCkpt, GParams
from candle_restart.ckpt.best import infer_direction
from candle_restart.ckpt.layout import TRAIN_STATE_FILE
from candle_restart.ckpt.policy import SavePolicy
from candle_restart.ckpt.restarter import CandleDict
from candle_restart.errors import ParamError
from candle_restart.keras import archive, rngs
from candle_restart.keras.cbstate import CallbackState, Captured, WithCallbacks, merged_logs, pending_names
from candle_restart.keras.handover import Restored, SavedMetrics, restored_into
from candle_restart.keras.internals import metric_direction, sync_training_state
from candle_restart.keras.restorelog import restored_line
from candle_restart.keras.snapshot import HostCopies, KerasSnapshot, take_snapshot
from candle_restart.keras.state import (
    add_metrics,
    apply_pending_optimizer,
    load_state,
    pending_optimizer,
    save_state,
    take_rngs,
)
from candle_restart.runtime.heartbeat import HEARTBEAT
from candle_restart.runtime.preempt import REQUEST, Preempted, arm

if TYPE_CHECKING:
    from candle_restart.keras.older import CandleCheckpointCallback, restart

__all__ = ["CandleCheckpointCallback", "CandleCkptKeras", "restart"]

# Keras' logs argument (metric name -> value), as Keras and subclasses of these callbacks type it.
Logs = dict[str, Any] | None


class CandleCkptKeras(CandleCkpt, keras.callbacks.Callback):
    """Keras callback that checkpoints per CANDLE's gParameters; see the module docstring."""

    def __init__(
        self, gParameters: GParams, logger: logging.Logger | str | None = "DEFAULT", verbose: bool = True
    ) -> None:
        keras.callbacks.Callback.__init__(self)
        CandleCkpt.__init__(self, gParameters, logger, verbose)
        if self.save_weights_only:
            self.model_file_name = "model.weights.h5"
        elif self.settings.model_format == "h5":
            self.model_file_name = "model.h5"  # CANDLE's name: Keras' HDF5 model, written synchronously
        self.batch_offset = 0  # batches of the current epoch done before this fit call (resumable fit)
        self._epoch_index = 0
        self._pending_metrics: SavedMetrics | None = None
        self._merge_metrics: SavedMetrics | None = None
        self._rngs_at_batch: dict[str, np.ndarray] | None = None  # generator states due at the next batch
        self._disarm: Callable[[], None] = lambda: None
        self._copies = HostCopies(private=self.settings.async_commit)
        self._capturer = archive.Capturer()
        self._said_sync = False
        self._metric_seen = False  # the monitored metric was in some epoch's logs
        self._said_missing = False  # the missing-metric warning was given
        self.callback_state = CallbackState(self)  # the other callbacks of the fit (candle_restart.keras.cbstate)
        self.restorer.loads_checked = True  # build_model checks the model file's CRC-32 as it reads it

    @property
    def model(self) -> keras.Model:
        """The model, its variables holding the live training state (as Keras' own ``Callback.model``)."""
        sync_training_state(self._model)  # JAX keeps them aside inside an epoch: a snapshot would read stale ones
        return self._model

    def set_model(self, model: keras.Model) -> None:
        """model: The Keras model."""
        if model is not self._model:
            self._copies.reset()
            self._capturer.reset()
        self._model = model

    def set_params(self, params: dict[str, object]) -> None:
        self.params = params

    def direction(self, metric: str) -> str:
        """ "+" or "-": from ``ckpt_save_best_mode``, the metric object, or the metric's name."""
        mode = self.settings.save_best_mode
        if mode == "auto":
            known = metric_direction(self.model, metric.removeprefix("val_"))
            if known is not None:
                return "+" if known == "up" else "-"
        found = infer_direction(metric, mode)
        if found is None:
            raise ParamError(
                "gParameters",
                "ckpt_save_best_mode",
                f"cannot tell whether '{metric}' should go up or down; set it to min or max",
            )
        return found

    # ----- Keras hooks ------------------------------------------------------------------
    def on_train_begin(self, logs: Logs = None) -> None:
        self._take_over_restart()
        applied = apply_pending_optimizer(self.model)
        if applied is not None:
            self.info(f"restarting: optimizer state applied ({len(applied.values)} variables)")
        self.callback_state.begin(self, self.restarted is not None)
        self._disarm = arm(signal.Signals[f"SIG{name}"] for name in self.settings.signals)
        self.in_training = True  # commits may now run in the background: the hooks below surface their errors
        self.last_save_time = time.monotonic()
        self.pacer.start()  # looks up the allocation's end once (candle_restart.ckpt.pacing)
        if REQUEST.requested:
            self._stop(f"{REQUEST.name} received before training started; ckpts/last is unchanged")

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self.release_console()  # the last epoch's progress line is closed, the next not begun
        self._epoch_index = int(epoch)
        generators = take_rngs(self._model)  # a restart's, once
        position = self.restorer.resume_position
        continuing = position is not None and position.epoch == epoch + 1 and self.batch_offset == position.batch
        self.callback_state.restore(self.model, int(epoch), continuing)
        if position is None or position.epoch != epoch + 1:
            self._restore_rngs(generators)  # an epoch end's: where the uninterrupted run stood now
            return
        if self.batch_offset == position.batch:
            self._merge_metrics = self._pending_metrics
            self._rngs_at_batch = generators  # a batch end's: the batch iterator may draw before the batch
        else:
            self._restore_rngs(generators)
            self.info(
                f"restarting: mid-epoch checkpoint (epoch {position.epoch}, batch {position.batch}): "
                "this fit reruns the epoch from its first batch; candle_restart.keras.fit continues it"
            )
        self._pending_metrics = None
        self.restorer.resume_position = None

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        if self._rngs_at_batch is not None:
            self._restore_rngs(self._rngs_at_batch)
            self._rngs_at_batch = None

    def _restore_rngs(self, generators: dict[str, np.ndarray] | None) -> None:
        if generators:
            self.info(f"restarting: random generators restored: {', '.join(rngs.restore(generators)) or 'none'}")

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._raise_commit_failure()
        self.callback_state.at("on_train_batch_end", batch, logs)
        if self._merge_metrics is not None:
            # Keras builds compiled metrics in the first train step, so the saved
            # accumulators are added after it: sums commute, the epoch's metrics match.
            if not add_metrics(self.model, self._merge_metrics):
                self.info(
                    "restarting: saved metric accumulators do not fit this model; epoch metrics restart"
                )
            elif logs is not None:  # the callbacks after this one see the batch's logs as if never stopped
                merged_logs(self.model, logs)
            self._merge_metrics = None
        due = self.pacer.batch_end()  # ckpt_save_batches/_seconds/_overhead_target; may record a halt
        steps = (self.params or {}).get("steps")
        if isinstance(steps, int) and int(batch) + 1 >= steps:
            return  # the epoch's last batch: on_epoch_end checkpoints (and stops) with the whole epoch
        if REQUEST.requested:
            self._checkpoint_and_stop(self.batch_offset + int(batch) + 1)
        if due:
            self.save_midepoch(self._epoch_index, self.batch_offset + int(batch) + 1)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        if self.in_training:  # fit's validation: the runner's watchdog sees the training alive
            HEARTBEAT.beat("step")

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._raise_commit_failure()
        logs = logs or {}
        self.callback_state.at("on_epoch_end", epoch, logs)
        metric = self.save_best_metric
        validated = any(key.startswith("val_") for key in logs)
        skipped_validation = metric.startswith("val_") and not validated  # validation_freq > 1
        if self.save_best and metric not in logs and not skipped_validation:
            raise ParamError(
                "gParameters",
                "ckpt_save_best_metric",
                f"'{metric}' is not among the metrics of this model: {sorted(logs)}",
            )
        value = _number(logs.get(metric))
        if value is None and self.save_best:
            self._metric_missing(metric)
        elif value is not None:
            self._metric_seen = True
        direction = self.direction(metric) if self.save_best else "-"
        self.epoch_logs = logs
        saved = self.ckpt_epoch(epoch, direction, value)
        if REQUEST.requested and int(epoch) + 1 < self.epoch_max:
            if SavePolicy.before_stop(self.settings, saved):
                self.save_epoch(int(epoch) + 1)
            self._stop(f"{REQUEST.name} received; stopped after epoch {int(epoch) + 1}")

    def _metric_missing(self, metric: str) -> None:
        """The monitored metric is not in this epoch's logs: no best this epoch (never a NaN best).

        Warned once, in the words of Keras' ``ModelCheckpoint``, unless the metric
        was seen before (``validation_freq`` > 1 validates only some epochs).
        """
        if self._metric_seen:
            self.debug(f"metrics: {metric}: not computed this epoch")
        elif not self._said_missing:
            self._said_missing = True
            self.warning(f"Can save best model only with {metric} available.")

    def on_train_end(self, logs: Logs = None) -> None:
        try:
            self.wait_for_commit()
        finally:
            self.pacer.stop()  # logs the measured checkpoint overhead
            self.in_training = False
            self._disarm()
            self.release_console()
            self.release_writer()  # another process may write this directory now
            self.callback_state.end()
        self.report_final()

    def _raise_commit_failure(self) -> None:
        """Record a finished background commit, or raise its error here, its held log lines printed first."""
        if self.committer.failed:
            self.release_console()
        self.engine.poll()

    def _take_over_restart(self) -> None:
        """Adopt the restart another instance loaded into this model (same directory), if this one did none."""
        record = restored_into(self.model)
        if self.restart_done or record is None or record.root != self.layout.root:
            return
        self.restorer.done, self.restorer.restarted, self.restorer.info = (
            True,
            record.info.to_dict(),
            record.info,
        )
        self.adopt_restart(record.info)
        self._pending_metrics = record.metrics

    # ----- preemption ----------------------------------------------------------------------
    def _checkpoint_and_stop(self, batches_done: int) -> None:
        if SavePolicy.before_stop(self.settings, saved=False):
            self.save_midepoch(self._epoch_index, batches_done)
        self._stop(
            f"{REQUEST.name} received; stopped in epoch {self._epoch_index + 1} after batch {batches_done}"
        )

    def _stop(self, reason: str) -> None:
        self.wait_for_commit()  # the checkpoint just taken is committed before the process says "resume me"
        self.release_console()
        waited = time.monotonic() - REQUEST.received if REQUEST.received else 0.0
        self.info(f"preempted: {reason} ({REQUEST.count} signal(s), {waited:.3f} s after the first); exit 75")
        # The handlers stay armed while the process unwinds: a further signal (Slurm's TERM
        # after USR1) is only counted, never the default action that would turn exit 75 into -15.
        raise Preempted(reason)

    # ----- model I/O -----------------------------------------------------------------------
    def snapshot_model(self, epoch: int) -> KerasSnapshot | WithCallbacks | None:
        """The checkpoint in host memory, or None to write synchronously.

        None when a subclass overrides `write_model_backend` (CANDLE's
        extension point: it is honoured, synchronously), with ``ckpt_model_format=h5``, or when this Keras
        release lacks the saving internals `candle_restart.keras.archive` uses.
        """
        if type(self).write_model_backend is not CandleCkptKeras.write_model_backend:
            return None
        if self.settings.model_format == "h5":
            return None  # Keras' HDF5 model format has no in-memory capture here
        if not archive.available:
            if not self._said_sync:
                self.info("this Keras release cannot snapshot a model: checkpoints are written synchronously")
                self._said_sync = True
            return None
        with archive.saving_whole(self.save_weights_only):
            snapshot = take_snapshot(
                self.model,
                self._copies,
                self._capturer,
                self.model_file_name,
                weights_only=self.save_weights_only,
                include_metrics=self.saving_position is not None,
            )
        captured = self.callback_state.capture()
        return snapshot if captured is None else WithCallbacks(snapshot, captured)

    def write_model(self, dir_work: Path, epoch: int) -> None:
        """The synchronous path: the other callbacks' state, then the model through the backend."""
        captured: Captured | None = self.callback_state.capture()
        if captured is not None:
            captured.write_into(Path(dir_work))
        super().write_model(dir_work, epoch)

    def write_model_backend(self, model: keras.Model, epoch: int) -> None:
        model_file = Path(str(self.model_file))
        if self.save_weights_only:
            model.save_weights(model_file)
        else:
            with archive.saving_whole(weights_only=False):
                model.save(model_file)
        save_state(
            model, model_file.parent / TRAIN_STATE_FILE, include_metrics=self.saving_position is not None
        )

    def build_model(self, model_file: Path | str) -> None:
        """Load a checkpoint into ``self.model``: full state when present, else CANDLE's weights file."""
        model_file = Path(model_file)
        state = model_file.parent / TRAIN_STATE_FILE
        if state.is_file():
            self._pending_metrics = load_state(
                self.model,
                state,
                TRAIN_STATE_FILE not in self.verified_files,
                self.verified_files,
                self.restorer.deferred,
            )
            parked = pending_optimizer(self.model)
            if parked is not None:
                self.info(
                    "restarting: model not compiled yet: weights and seed state restored; "
                    f"optimizer state ({len(parked.values)} variables) is applied when training starts"
                )
            self.callback_state.load(model_file.parent, self.model, self.verified_files)
            self.info(
                restored_line(
                    self.model,
                    self.restorer.info,
                    self._pending_metrics,
                    None if parked is None else len(parked.values),
                    pending_names(self.model),
                )
            )
        else:
            self.model.load_weights(model_file)
            self.info("restarting: restored weights only (no train_state.npz: no optimizer, RNG or callback state)")

    def restart(self, model: keras.Model, verbose: bool = True) -> CandleDict | None:
        """Load the newest checkpoint that verifies into ``model`` (compiled or not); its ``ckpt-info.json`` or None."""
        J = super().restart(model, verbose)
        if J is not None and self.restorer.info is not None:
            Restored(self.layout.root, self.restorer.info, self._pending_metrics).into(model)
        return J


def __getattr__(name: str) -> object:
    """CANDLE's older generation (`CandleCheckpointCallback`, `restart`), importable from here as
    before; it lives in `candle_restart.keras.older`, which builds on this module."""
    if name in ("CandleCheckpointCallback", "restart"):
        from candle_restart.keras import older

        return getattr(older, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _number(value: object) -> float | None:
    """A metric value of Keras' logs as a float (None: not logged this epoch)."""
    if value is None:
        return None
    return float(value)  # type: ignore[arg-type]  # a number, or a 0-d tensor or array
