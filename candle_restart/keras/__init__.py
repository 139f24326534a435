"""Keras 3 backend: `CandleCkptKeras`, its alias `CandleCheckpointCallback`, and `restart`."""

from candle_restart.ckpt.params import ckpt_defs, ckpt_parser
from candle_restart.keras.callback import CandleCheckpointCallback, CandleCkptKeras, restart

__all__ = ["CandleCheckpointCallback", "CandleCkptKeras", "ckpt_defs", "ckpt_parser", "restart"]
