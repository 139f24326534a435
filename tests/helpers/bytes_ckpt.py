"""A framework-free backend for the core: the "model" is a bytearray written as one file.

This is not a stand-in for Keras: `CandleCkpt` is framework-neutral by design,
and this is the smallest real backend of it (real files, real commits).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from candle_restart.candle import CandleCkpt


class BytesModel:
    def __init__(self, payload: bytes = b"") -> None:
        self.payload = payload


class BytesCkpt(CandleCkpt):
    model_file_name = "model.bin"

    @property
    def model(self) -> BytesModel:
        """The model set by ``set_model`` (a `BytesModel` in every test)."""
        return cast(BytesModel, super().model)

    def write_model_backend(self, model: Any, epoch: int) -> None:
        assert self.model_file is not None and isinstance(model, BytesModel)
        Path(self.model_file).write_bytes(model.payload)

    def build_model(self, model_file: Path | str) -> None:
        assert isinstance(self.model, BytesModel)
        self.model.payload = Path(model_file).read_bytes()


MakeCkpt = Callable[..., BytesCkpt]  # the ``make_ckpt`` fixture of tests/ckpt
