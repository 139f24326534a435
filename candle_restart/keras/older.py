"""CANDLE's older generation: `CandleCheckpointCallback` and ``restart(gParameters, model)``.

Both are `candle_restart.keras.callback.CandleCkptKeras` with checkpoints where that generation
put them (``<ckpt_directory>/ckpts/``).  `restart` restarts the model through a throwaway
instance that hands what it restored (optimizer state before ``compile``, the best metric) to the
run's callback through the model, so calling it before or after ``model.compile`` loses nothing.
Both names are importable from `candle_restart.keras.callback` too.
"""

from __future__ import annotations

import keras

from candle_restart.candle.facade import GParams
from candle_restart.ckpt.restarter import CandleDict
from candle_restart.keras.callback import CandleCkptKeras

__all__ = ["CandleCheckpointCallback", "restart"]


class CandleCheckpointCallback(CandleCkptKeras):
    """CANDLE's older callback: `CandleCkptKeras` with checkpoints in ``<ckpt_directory>/ckpts/``.

    That is where CANDLE's older generation put them (its parser's
    ``ckpt_directory`` is ``./save``, its checkpoints ``./save/ckpts/last``
    and so on); a ``ckpt_directory`` already named ``ckpts`` is used as is.
    """

    ckpts_subdirectory = True


class _Restarter(CandleCheckpointCallback):
    """The throwaway instance behind `restart`: it logs no initialisation block of its own
    (the run's callback does), and hands what it restored to that callback through the model."""

    def report_initial(self) -> None:
        pass

    def warn_unknown_keys(self) -> None:
        pass  # the run's callback warns, once


def restart(gParameters: GParams, model: keras.Model, verbose: bool = True) -> CandleDict | None:
    """CANDLE's older entry point: restart ``model`` per gParameters; the ckpt-info dict or None.

    Call it before or after ``model.compile``; a `CandleCheckpointCallback`
    (or `CandleCkptKeras`) in ``fit``'s callbacks applies what is left
    (optimizer state) when training starts.
    """
    return _Restarter(gParameters, verbose=verbose).restart(model, verbose=verbose)
