"""CANDLE's small public types of ``candle.ckpt_utils``: `ModelType`, `CandleCkptModel`, `ParamRequired`.

Benchmarks import these by name; they mean here what they meant there.
"""

from __future__ import annotations

from enum import Enum, auto


class ModelType(Enum):
    """The framework of a model: CANDLE's tag for a `CandleCkptModel`."""

    KERAS = auto()
    PYTORCH = auto()


class CandleCkptModel:
    """A framework-tagged model payload, as CANDLE's: ``model_type`` and the positional ``payload``."""

    def __init__(self, model_type: ModelType, *args: object) -> None:
        self.model_type = model_type
        self.payload = args


class ParamRequired:
    """Given as ``dflt`` to ``CandleCkpt.param``: the key must be in gParameters."""
