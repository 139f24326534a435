"""A restart handed from one callback instance to another through the model it was loaded into.

CANDLE's older ``restart(gParameters, model)`` (`candle_restart.keras.older`) restarts the model
with a throwaway instance; the run's `candle_restart.keras.callback.CandleCkptKeras` (same
checkpoint directory) adopts what it loaded when training starts: the checkpoint's
``ckpt-info.json`` (best metric, epoch) and a mid-epoch checkpoint's metric accumulators.  The
record lives as long as the model does (a weak reference).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from candle_restart.records.ckptinfo import CkptInfo

SavedMetrics = list[np.ndarray]  # a mid-epoch checkpoint's metric accumulators (candle_restart.keras.state)


@dataclass(frozen=True)
class Restored:
    """A restart loaded into a model, for a callback that did not restart it itself."""

    root: Path
    info: CkptInfo
    metrics: SavedMetrics | None  # the mid-epoch metric accumulators it loaded

    def into(self, model: keras.Model) -> None:
        """Record this as the restart last loaded into ``model``."""
        _RESTARTS[model] = self


# model -> the restart last loaded into it
_RESTARTS: weakref.WeakKeyDictionary[keras.Model, Restored] = weakref.WeakKeyDictionary()


def restored_into(model: keras.Model) -> Restored | None:
    """The restart last loaded into ``model`` by any instance, or None."""
    return _RESTARTS.get(model)
