"""CANDLE's ``candle.ckpt_utils`` under this package: ``from candle_restart.ckpt_utils import ...``.

Framework-free, as CANDLE's module was: `CandleCkpt`, `ModelType`,
`CandleCkptModel`, `ParamType`, `ParamRequired`, `ckpt_parser`, `ckpt_defs`
(and `str2bool`).  The implementation lives in `candle_restart.candle` (the facade) and
`candle_restart.ckpt` (the gParameters and the engine).
"""

from candle_restart.candle.facade import CandleCkpt
from candle_restart.candle.types import CandleCkptModel, ModelType, ParamRequired
from candle_restart.ckpt.params import ParamType, ckpt_defs, ckpt_parser, str2bool

__all__ = [
    "CandleCkpt",
    "CandleCkptModel",
    "ModelType",
    "ParamRequired",
    "ParamType",
    "ckpt_defs",
    "ckpt_parser",
    "str2bool",
]
