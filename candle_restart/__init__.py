"""candle_restart: durable, exactly-resuming checkpoints and a restart service for CANDLE-style training.

``import candle_restart`` (and ``candle_restart.ckpt``, ``candle_restart.candle``) loads no framework:
the names below are imported on first use.  They are the checkpoint names of
both of CANDLE's generations, so one import line changes:

* candle_lib ``develop``'s ``candle``: `CandleCkptKeras`, `CandleCkpt`, `ModelType`,
  `MultiGPUCheckpoint`, `CandleCkptPyTorch` (and ``candle.ckpt_utils`` is
  `candle_restart.ckpt_utils`, ``candle.ckpt_keras_utils`` is `candle_restart.ckpt_keras_utils`,
  ``candle.ckpt_pytorch_utils`` is `candle_restart.ckpt_pytorch_utils`);
* ``master``'s ``candle``: `CandleCheckpointCallback`, `MultiGPUCheckpoint`, `restart`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CandleCkptKeras": "candle_restart.keras",
    "CandleCheckpointCallback": "candle_restart.keras",
    "MultiGPUCheckpoint": "candle_restart.keras",
    "restart": "candle_restart.keras",
    "CandleCkpt": "candle_restart.candle",
    "ModelType": "candle_restart.candle",
    "CandleCkptPyTorch": "candle_restart.torch",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'candle_restart' has no attribute {name!r}")


__all__ = [
    "CandleCheckpointCallback",
    "CandleCkpt",
    "CandleCkptKeras",
    "CandleCkptPyTorch",
    "ModelType",
    "MultiGPUCheckpoint",
    "__version__",
    "restart",
]
