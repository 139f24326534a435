"""`CandleCkptPyTorch`: CANDLE's PyTorch checkpoint class, durable, exact, and safe to load.

Drop-in for ``candle.ckpt_pytorch_utils.CandleCkptPyTorch`` (same constructor,
``set_model({"model": m, "optimizer": o})``, ``ckpt_epoch(epoch, metric_value)``
minimising the metric, ``restart(model)`` returning CANDLE's ``ckpt-info.json``
dict, ``write_model_backend``, ``build_model``; same gParameters keys, directory
layout and log lines).  The engine behind it is the Keras callback's
(`candle_restart.candle.facade.CandleCkpt`): asynchronous commits from reused host
buffers, the commit protocol, two tiers, the writer lease, fallback to the newest
checkpoint that verifies.

A checkpoint is ``model.h5``, every tensor once in the safetensors layout (not HDF5,
despite CANDLE's name, and not a pickle: loading it runs no code), and
``train_state.json`` (`candle_restart.records.torchstate`), the rest: each part's
non-tensor state, every RNG.  ``set_model`` also takes ``scheduler`` (one or a list),
``scaler``, ``sampler``/``dataloader``, ``torch.Generator`` objects and anything with
``state_dict()``/``load_state_dict()``.

A plain loop, exact across restarts (``J["epoch"]`` is the number of epochs done)::

    ckpt = CandleCkptPyTorch(gParameters)
    ckpt.set_model({"model": model, "optimizer": opt, "scheduler": sched, "dataloader": loader})
    J = ckpt.restart(model)
    for epoch in range(0 if J is None else J["epoch"], gParameters["epochs"]):
        for batch, (x, y) in ckpt.enumerate(loader):   # continues a mid-epoch checkpoint's epoch
            ...
            ckpt.batch_end(batch)                      # a signal: commit, then Preempted (exit 75)
        ckpt.ckpt_epoch(epoch, loss)

`enumerate` records the RNG as each epoch's batches begin; resuming a mid-epoch checkpoint it
replays the epoch's order from that state, skips the batches done and puts the checkpoint's RNG
back, so the epoch continues at the next batch as if never stopped.  A loop that iterates by
itself can ask `batches_to_skip`.  Signals (``ckpt_signals``) are caught from the first
`enumerate`, `batch_end` or `ckpt_epoch` until the final epoch's `ckpt_epoch` (or `on_train_end`).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch.utils.hooks import RemovableHandle

from candle_restart.candle.facade import CandleCkpt, GParams
from candle_restart.ckpt.layout import TORCH_STATE_FILE
from candle_restart.ckpt.policy import SavePolicy
from candle_restart.ckpt.restarter import CandleDict
from candle_restart.ckpt.sink import CheckpointFiles
from candle_restart.errors import CorruptCheckpointError
from candle_restart.records.torchstate import TorchState
from candle_restart.runtime.preempt import REQUEST, Preempted, arm
from candle_restart.torch import tensorio
from candle_restart.torch.snapshot import Deferred, TensorCopies, TorchSnapshot, take_snapshot
from candle_restart.torch.state import Parts, Rng, capture_rng, load_into, restore, restore_rng

T = TypeVar("T")


class CandleCkptPyTorch(CandleCkpt):
    """PyTorch checkpointing per CANDLE's gParameters; see the module docstring."""

    model_file_name = "model.h5"

    def __init__(
        self, gParams: GParams, logger: logging.Logger | str | None = "DEFAULT", verbose: bool = True
    ) -> None:
        CandleCkpt.__init__(self, gParams, logger, verbose)
        self.parts: Parts | None = None
        self._copies = TensorCopies()
        self._epoch_index = 0  # the 0-based epoch the loop is in (after a restart: epochs done)
        self._epoch_rng: Rng | None = None  # the RNG as this epoch's batches began (enumerate)
        self._resume_rng: Rng | None = None  # a restored mid-epoch checkpoint's epoch_rng
        self._steps: int | None = None  # batches in this epoch, when the iterable has a length
        self._disarm: Callable[[], None] = lambda: None
        self._deferred: Deferred | None = None  # the copies the last snapshot left to the optimizer's step
        self._hooks: list[RemovableHandle] = []  # the optimizers' step pre-hooks

    # ----- CANDLE's methods ----------------------------------------------------------------
    def set_model(self, model: object) -> None:
        """model: ``{"model": module, "optimizer": optimizer, ...}`` (see the module docstring).

        A bare module is ``{"model": module}``; the module already registered (CANDLE's
        ``restart(model)`` passes it again) or None changes nothing.
        """
        if model is None or (self.parts is not None and model is self.parts.model):
            return
        given: Mapping[str, object] = model if isinstance(model, Mapping) else {"model": model}
        self.parts = Parts.of(given)
        self._model = dict(given)
        self._copies.reset()
        self.wait_for_snapshot()
        for hook in self._hooks:
            hook.remove()
        self._hooks = [
            opt.register_step_pre_hook(self._before_step)
            for opt in self.parts.objects.values()
            if isinstance(opt, torch.optim.Optimizer)
        ]

    def wait_for_snapshot(self) -> None:
        """Return once the last checkpoint has its copy of every tensor (see `candle_restart.torch.snapshot`).

        The optimizers' steps call this; so must code that changes trained parameters in place
        outside ``optimizer.step()`` between a checkpoint and the next step.
        """
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            deferred.fill()

    def _before_step(self, *_args: object) -> None:
        self.wait_for_snapshot()

    def ckpt_epoch(self, epoch: int, metric_value: float | torch.Tensor | None) -> bool:  # type: ignore[override]
        """The training loop calls this after each 0-based ``epoch``; checkpoints per the policy.

        The metric is minimised (CANDLE's rule) unless ``ckpt_save_best_mode`` is ``max``.
        After the final epoch (``epochs``) the commit is waited for and the writer lease given back.
        """
        self.on_train_begin()
        self._raise_commit_failure()
        self._resume_not_continued()
        value = None if metric_value is None else float(metric_value)
        direction = "+" if self.settings.save_best_mode == "max" else "-"
        if self.epoch_logs is None:  # a loop may set every metric of the epoch first
            self.epoch_logs = {self.save_best_metric: value}
        saved = CandleCkpt.ckpt_epoch(self, epoch, direction, value)
        self._epoch_index, self._epoch_rng, self._steps = int(epoch) + 1, None, None
        final = int(epoch) + 1 >= self.epoch_max
        if REQUEST.requested and not final:
            if SavePolicy.before_stop(self.settings, saved):
                self.save_epoch(int(epoch) + 1)
            self._stop(f"{REQUEST.name} received; stopped after epoch {int(epoch) + 1}")
        if final:
            self.on_train_end()
        return saved

    def write_model_backend(self, model: object, epoch: int) -> None:
        """Write this checkpoint's files beside ``self.model_file`` (synchronously)."""
        snapshot = self._snapshot(private=False)
        files = CheckpointFiles(Path(str(self.model_file)).parent, checksum=False)
        snapshot.write(files)
        files.finish()

    def build_model(self, model_file: Path | str) -> None:
        """Load a checkpoint into the objects given to ``set_model``: ours, or CANDLE's ``torch.save`` file."""
        model_file = Path(model_file)
        parts = self._parts()
        state_file = model_file.parent / TORCH_STATE_FILE
        kind = tensorio.file_kind(model_file)
        if kind == "pickle":
            self._build_candle(model_file, parts)
            return
        if kind != "safetensors" or not state_file.is_file():
            raise CorruptCheckpointError(
                str(model_file),
                None,
                f"is neither a safetensors file with its {TORCH_STATE_FILE} nor a torch.save file",
            )
        record = TorchState.read(state_file)
        tensors = tensorio.read_tensors(model_file.parent / record.tensors_file)
        restored = restore(record, tensors, parts, str(model_file), self.info)
        self._resume_rng = restored.epoch_rng

    def _build_candle(self, model_file: Path, parts: Parts) -> None:
        """CANDLE's checkpoint: ``{"model_state_dict", "optimizer_state_dict", ...}`` (no RNG state)."""
        data = tensorio.load_pickle_safely(model_file)
        if not isinstance(data, dict) or "model_state_dict" not in data:
            raise CorruptCheckpointError(
                str(model_file), "model_state_dict", "is missing from this torch.save file"
            )
        load_into(parts.objects["model"], "model", data["model_state_dict"], str(model_file))
        if "optimizer" in parts.objects and "optimizer_state_dict" in data:
            load_into(parts.objects["optimizer"], "optimizer", data["optimizer_state_dict"], str(model_file))
        self.info(
            "restarting: a checkpoint CANDLE wrote: model and optimizer restored, RNG state not saved in it"
        )

    def restart(self, model: object = None, verbose: bool = True) -> CandleDict | None:
        """Load the newest checkpoint that verifies; CANDLE's ``ckpt-info.json`` dict, or None.

        ``J["epoch"]`` is the number of epochs done (the loop's first epoch); a mid-epoch
        checkpoint's ``J["position"]`` is ``{"epoch", "batch"}`` (1-based epoch, batches done).
        """
        self._resume_rng = None
        J = CandleCkpt.restart(self, model, verbose)
        self._epoch_index = 0 if J is None else int(J["epoch"])
        return J

    # ----- the loop's calls ------------------------------------------------------------------
    def enumerate(self, batches: Iterable[T], epoch: int | None = None) -> Iterator[tuple[int, T]]:
        """``enumerate(batches)`` for this epoch (``epoch``: 0-based, default the one after the last
        `ckpt_epoch`), continuing a restored mid-epoch checkpoint's epoch at its next batch."""
        self.on_train_begin()
        if epoch is not None:
            self._epoch_index = int(epoch)
        skip, back = self._take_position(), None
        if skip and self._resume_rng is not None and self.parts is not None:
            back = capture_rng(self.parts.generators)  # the checkpoint's RNG, restored by restart
            restore_rng(self._resume_rng, self.parts.generators, self.info)
        self._resume_rng = None
        self._epoch_rng = capture_rng(self.parts.generators) if self.parts is not None else None
        self._steps = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        iterator = iter(batches)
        for done in range(skip):
            if next(iterator, _END) is _END:
                self.info(f"restarting: the epoch has only {done} batches; nothing left of it")
                break
        if back is not None and self.parts is not None:
            restore_rng(back, self.parts.generators, self.info)
        if skip:
            self.info(
                f"restarting: epoch {self._epoch_index + 1} continues at batch {skip + 1} ({skip} skipped)"
            )
        yield from enumerate(iterator, start=skip)

    def batches_to_skip(self) -> int:
        """Batches of this epoch a restored mid-epoch checkpoint had done (0: none); asked once.

        For a loop that skips them itself: the order of the skipped batches is the loop's
        business (`enumerate` replays it from the RNG state).
        """
        self._resume_rng = None
        return self._take_position()

    def batch_end(self, batch: int) -> None:
        """The loop calls this after each 0-based ``batch`` of the epoch: a checkpoint may be due
        (``ckpt_save_batches``, ``ckpt_save_seconds``, ``ckpt_overhead_target``); after a signal
        or before the walltime, a checkpoint is committed and `Preempted` raised (exit 75)."""
        self.on_train_begin()
        self._raise_commit_failure()
        self._resume_not_continued()
        due = self.pacer.batch_end()
        done = int(batch) + 1
        if self._steps is not None and done >= self._steps:
            return  # the epoch's last batch: ckpt_epoch checkpoints (and stops) with the whole epoch
        if REQUEST.requested:
            if SavePolicy.before_stop(self.settings, saved=False):
                self.save_midepoch(self._epoch_index, done)
            self._stop(
                f"{REQUEST.name} received; stopped in epoch {self._epoch_index + 1} after batch {done}"
            )
        if due:
            self.save_midepoch(self._epoch_index, done)

    def on_train_end(self, logs: object = None) -> None:
        """Wait for the commit in flight, give the writer lease back, say what is kept (CANDLE's lines)."""
        if not self.in_training:
            return
        try:
            self.wait_for_commit()
        finally:
            self.pacer.stop()
            self.in_training = False
            self._disarm()
            self.release_console()
            self.release_writer()
        self.report_final()

    def __enter__(self) -> CandleCkptPyTorch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.on_train_end()

    # ----- inside --------------------------------------------------------------------------
    def _parts(self) -> Parts:
        if self.parts is None:
            raise TypeError("CandleCkptPyTorch: call set_model({'model': ..., 'optimizer': ...}) first")
        return self.parts

    def on_train_begin(self, logs: object = None) -> None:
        """Training has begun: catch the signals, let commits run in the background, start the pacer."""
        if self.in_training:
            return
        self._disarm = arm(signal.Signals[f"SIG{name}"] for name in self.settings.signals)
        self.in_training = True
        self.last_save_time = time.monotonic()
        self.pacer.start()

    def _take_position(self) -> int:
        position = self.restorer.resume_position
        if position is None or position.epoch != self._epoch_index + 1:
            return 0
        self.restorer.resume_position = None
        return position.batch

    def _resume_not_continued(self) -> None:
        position = self.restorer.resume_position
        if position is not None and position.epoch == self._epoch_index + 1:
            self.info(
                f"restarting: mid-epoch checkpoint (epoch {position.epoch}, batch {position.batch}): "
                "this loop reran the epoch from its first batch; ckpt.enumerate(loader) continues it"
            )
            self.restorer.resume_position, self._resume_rng = None, None

    def _raise_commit_failure(self) -> None:
        if self.committer.failed:
            self.release_console()
        self.engine.poll()

    def _stop(self, reason: str) -> None:
        self.wait_for_commit()  # committed (and drained) before the process says "resume me"
        waited = time.monotonic() - REQUEST.received if REQUEST.received else 0.0
        self.info(f"preempted: {reason} ({REQUEST.count} signal(s), {waited:.3f} s after the first); exit 75")
        raise Preempted(reason)

    def _snapshot(self, private: bool) -> TorchSnapshot:
        """``private``: into the reused host buffers, trained tensors deferred to the next step (an
        asynchronous commit); else the live tensors, for a write in this thread now."""
        epoch_rng = self._epoch_rng if self.saving_position is not None else None
        snapshot = take_snapshot(
            self._parts(), self._copies if private else None, self.model_file_name, epoch_rng
        )
        if snapshot.deferred:
            self._deferred = snapshot.deferred
        return snapshot

    def snapshot_model(self, epoch: int) -> TorchSnapshot | None:
        """The checkpoint in host memory; None when a subclass overrides `write_model_backend`
        (CANDLE's extension point, honoured synchronously)."""
        if type(self).write_model_backend is not CandleCkptPyTorch.write_model_backend:
            return None
        return self._snapshot(private=self.settings.async_commit and self.in_training)


_END = object()
