"""CANDLE's PyTorch names resolve to the implementation; ``import candle_restart`` still loads no torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")

import candle_restart
from candle_restart import ckpt_pytorch_utils, ckpt_utils
from candle_restart.torch import CandleCkptPyTorch


def test_the_pytorch_names_are_the_implementation() -> None:
    assert candle_restart.CandleCkptPyTorch is CandleCkptPyTorch is ckpt_pytorch_utils.CandleCkptPyTorch
    assert issubclass(CandleCkptPyTorch, ckpt_utils.CandleCkpt)
    assert "CandleCkptPyTorch" in candle_restart.__all__ and ckpt_pytorch_utils.__all__ == [
        "CandleCkptPyTorch"
    ]
    for method in (
        "set_model",
        "ckpt_epoch",
        "restart",
        "write_model_backend",
        "build_model",
        "on_train_end",
    ):
        assert callable(getattr(CandleCkptPyTorch, method))


def test_importing_candle_restart_loads_no_torch_until_the_class_is_used() -> None:
    code = (
        "import sys, candle_restart, candle_restart.ckpt, candle_restart.cli;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('torch','tensorflow','keras')];"
        "candle_restart.CandleCkptPyTorch; print(bad, 'torch' in sys.modules);"
        "raise SystemExit(1 if bad or 'torch' not in sys.modules else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stdout + proc.stderr
