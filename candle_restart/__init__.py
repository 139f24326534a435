"""candle_restart: durable, exactly-resuming checkpoints and a restart service for CANDLE-style training.

``import candle_restart`` (and ``candle_restart.ckpt``) loads no framework:
the Keras names below are imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CandleCkptKeras": "candle_restart.keras",
    "CandleCheckpointCallback": "candle_restart.keras",
    "restart": "candle_restart.keras",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'candle_restart' has no attribute {name!r}")


__all__ = ["CandleCheckpointCallback", "CandleCkptKeras", "__version__", "restart"]
