"""``make_ckpt``: a `BytesCkpt` (the framework-free backend, in ``tests/helpers``) on ``tmp_path/ckpts``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BytesCkpt, BytesModel
from tests.helpers.bytes_ckpt import MakeCkpt


@pytest.fixture
def make_ckpt(tmp_path: Path) -> MakeCkpt:
    def make(logger: Any = None, **params: Any) -> BytesCkpt:
        params.setdefault("epochs", 10)
        params.setdefault("ckpt_directory", str(tmp_path / "ckpts"))
        ckpt = BytesCkpt(params, logger=logger)
        ckpt.set_model(BytesModel(b"weights"))
        return ckpt

    return make
