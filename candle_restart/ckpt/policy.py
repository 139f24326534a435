"""Whether to checkpoint now: the one place that decides, beside the pacer that measures.

Three questions, each a function of the settings and the facts the caller passes in
(no clock, no files, no log):

* `SavePolicy.epoch_end`: after 1-based epoch ``epoch`` (CANDLE's ``save_check``):
  checkpoints off, epochs skipped, a new best, the final epoch, the interval, in that order;
* `SavePolicy.batch_end`: mid-epoch (``ckpt_save_batches``, ``ckpt_save_seconds``,
  ``ckpt_overhead_target``'s interval);
* `SavePolicy.before_stop`: a halt or preemption stops training: checkpoint unless the
  epoch end just did, or checkpoints are off.

`candle_restart.candle.facade.CandleCkpt.save_check`, `candle_restart.ckpt.pacing.Pacer.batch_end`
and the Keras and torch callbacks' stops ask here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from candle_restart.ckpt.params import CkptParams

__all__ = ["EpochVerdict", "SavePolicy"]


class EpochVerdict(enum.Enum):
    """Why an epoch end does or does not checkpoint."""

    DISABLED = "disabled"  # ckpt_save_interval 0
    SKIPPED = "skipped"  # before ckpt_skip_epochs
    BEST = "best"  # the monitored metric improved
    FINAL = "final"  # the last epoch of the training
    INTERVAL = "interval"  # a multiple of ckpt_save_interval
    NOT_DUE = "not due"

    @property
    def save(self) -> bool:
        return self in (EpochVerdict.BEST, EpochVerdict.FINAL, EpochVerdict.INTERVAL)


class SavePolicy:
    """The save decisions (see the module docstring); stateless, so one instance serves all."""

    @staticmethod
    def epoch_end(settings: CkptParams, epoch: int, improved: Callable[[], bool]) -> EpochVerdict:
        """The verdict for 1-based ``epoch``.

        ``improved`` is asked only when checkpoints are on and the epoch is not skipped
        (it updates the best-metric bookkeeping, as CANDLE's ``save_check`` did).
        """
        if settings.save_interval == 0:
            return EpochVerdict.DISABLED
        if epoch < settings.skip_epochs:
            return EpochVerdict.SKIPPED
        if improved():
            return EpochVerdict.BEST
        if epoch == settings.epochs:
            return EpochVerdict.FINAL
        if epoch % settings.save_interval == 0:
            return EpochVerdict.INTERVAL
        return EpochVerdict.NOT_DUE

    @staticmethod
    def batch_end(
        settings: CkptParams,
        *,
        batches_since: int,
        seconds_since: float,
        target_interval: Callable[[], int],
        can_save: bool = True,
    ) -> bool:
        """Is a mid-epoch checkpoint due, ``batches_since`` batches and ``seconds_since`` seconds
        after the last one?  ``target_interval``: the overhead target's interval in batches
        (asked only when ``ckpt_overhead_target`` is set, which then decides alone)."""
        if not can_save or not settings.save_interval:
            return False
        if settings.overhead_target:
            return batches_since >= target_interval()
        if settings.save_batches and batches_since >= settings.save_batches:
            return True
        return bool(settings.save_seconds) and seconds_since >= settings.save_seconds

    @staticmethod
    def before_stop(settings: CkptParams, saved: bool) -> bool:
        """Training stops (a halt, a signal): checkpoint first unless ``saved`` just now or checkpoints are off."""
        return not saved and bool(settings.save_interval)
