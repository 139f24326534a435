"""CANDLE's ``candle.ckpt_pytorch_utils`` under this package (imports torch).

`CandleCkptPyTorch` (candle_lib ``develop``); the implementation lives in `candle_restart.torch`.
"""

from candle_restart.torch.callback import CandleCkptPyTorch

__all__ = ["CandleCkptPyTorch"]
