"""The running best of the monitored metric: CANDLE's ``save_best`` bookkeeping, in one object.

`BestTracker` owns ``best_metric_last`` (the running best; None while there is
none), ``epoch_best`` (the 1-based epoch that set it, 0 for none) and the
direction it was judged in.  It is used by the training thread only.

* `check` is CANDLE's ``save_check_best``: None (a metric missing from an
  epoch's logs) and NaN never improve; CANDLE started every metric at +inf, so
  a "+" metric improves from -inf.
* `adopt` takes the bookkeeping of a restored checkpoint: its ``best_epoch``,
  or, for a checkpoint CANDLE wrote (no ``best_epoch`` key), the epoch the
  ``best`` link names if the checkpoint had finished it by then.
* `infer_direction`: whether a metric improves upward or downward, from
  ``ckpt_save_best_mode`` or the metric's name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from candle_restart.errors import ParamError
from candle_restart.records.ckptinfo import CkptInfo


def infer_direction(metric: str, mode: str) -> str | None:
    """ "+" if ``metric`` improves upward, "-" if downward, None if its name does not tell."""
    if mode == "max":
        return "+"
    if mode == "min":
        return "-"
    name = metric.removeprefix("val_")
    if name.endswith("loss") or name in ("lr", "learning_rate"):
        return "-"
    if any(s in name for s in ("acc", "auc", "precision", "recall", "f1", "fmeasure", "r2", "iou")):
        return "+"
    if any(s in name for s in ("error", "mse", "mae", "crossentropy", "hinge", "divergence")):
        return "-"
    return None


class BestTracker:
    """The best metric value, its epoch and its direction (see the module docstring)."""

    def __init__(self, enabled: bool, metric: str, initial: float | None) -> None:
        self.enabled = enabled
        self.metric = metric
        self.value: float | None = initial  # CANDLE's best_metric_last
        self.epoch = 0  # CANDLE's epoch_best: this run's best, or the restored checkpoint's
        self.mode: str | None = None  # "min" or "max" once a value was checked

    def check(
        self, epoch: int, direction: str, metric_value: float | None, debug: Callable[[str], None]
    ) -> bool:
        """True if ``metric_value`` improves on the running best in ``direction`` ("+" or "-")."""
        if not self.enabled or metric_value is None:
            return False
        if direction not in ("+", "-"):
            raise ParamError(
                "gParameters", "ckpt_save_best_mode", f"direction must be '+' or '-', got {direction!r}"
            )
        value = float(metric_value)
        last = self.value
        if last is None:
            last = math.inf if direction == "-" else -math.inf
        symbol = "<" if value < last else ">" if value > last else "="
        debug(f"metrics: {self.metric}: current={value:f} {symbol} last={last:f}")
        self.mode = "min" if direction == "-" else "max"
        improved = value < last if direction == "-" else value > last
        if improved and math.isfinite(value):
            self.value = value
            self.epoch = epoch
            return True
        return False

    def adopt(self, info: CkptInfo, best_link: Callable[[], int | None]) -> None:
        """Take the best of a restored checkpoint; ``best_link`` reads the epoch ``best`` names."""
        best = info.best_metric_last
        self.value = best if best is not None and math.isfinite(best) else None
        if info.best_epoch is not None:
            self.epoch = info.best_epoch
        elif info.schema_version is not None:  # ours, and it had no best
            self.epoch = 0
        else:  # CANDLE's: the best link, if the checkpoint had finished that epoch
            linked = best_link()
            self.epoch = linked if linked is not None and linked <= info.epoch else 0
