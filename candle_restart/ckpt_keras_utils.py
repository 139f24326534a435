"""CANDLE's ``candle.ckpt_keras_utils`` under this package (imports Keras).

`CandleCkptKeras` and `MultiGPUCheckpoint` (candle_lib ``develop``), and the
older generation's `CandleCheckpointCallback` and `restart`; the
implementation lives in `candle_restart.keras`.
"""

from candle_restart.keras.callback import CandleCkptKeras
from candle_restart.keras.multigpu import MultiGPUCheckpoint
from candle_restart.keras.older import CandleCheckpointCallback, restart

__all__ = ["CandleCheckpointCallback", "CandleCkptKeras", "MultiGPUCheckpoint", "restart"]
