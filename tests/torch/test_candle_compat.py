"""candle_lib's PyTorch calling pattern, unchanged but for the import, through CANDLE's acceptance sequence.

CANDLE's four steps (as ``tests/keras/test_candle_compat.py`` runs them for Keras): train 3
epochs; restart to 5; 5 again with ``--ckpt_restart_mode off``; ``rm -r ckpts/epochs`` and 10
epochs with ``--ckpt_keep_limit 1 --ckpt_save_best False``, which must leave exactly one epoch
directory.  One real process runs the four steps (``candle_baseline.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")

from candle_restart.records.jsontypes import JsonObject
from tests.helpers import runner_env, split_steps

BASELINE = Path(__file__).resolve().parent / "candle_baseline.py"
FOUR_STEPS: list[JsonObject] = [
    {"argv": ["--epochs", "3"]},
    {"argv": ["--epochs", "5"]},
    {"argv": ["--epochs", "5", "--ckpt_restart_mode", "off"]},
    {
        "argv": ["--epochs", "10", "--ckpt_keep_limit", "1", "--ckpt_save_best", "False"],
        "rm": "out/ckpts/epochs",
    },
]



def test_candles_acceptance_sequence_leaves_one_epoch_directory(tmp_path: Path) -> None:
    steps = [{"cwd": str(tmp_path), **s} for s in FOUR_STEPS]
    proc = subprocess.run(
        [sys.executable, str(BASELINE), json.dumps(steps)],
        env=runner_env(),
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = split_steps(proc.stdout)
    ckpts = tmp_path / "out" / "ckpts"
    # 1: three epochs; CANDLE's stdout lines, whole.
    assert "Callback initialized." in out[0] and "checkpoints list: [1, 2, 3]" in out[0]
    assert not any(line.startswith("restarting") for line in out[0])
    # 2: restart to 5: J["epoch"] == 3 is where the loop starts.
    assert "restarting from epoch: 3" in out[1] and "restarting from ckpt: initial_epoch: 3" in out[1]
    assert "checkpoints list: [4, 5]" in out[1]
    # 3: restart off: a fresh run over the same directory.
    assert not any(line.startswith("restarting") for line in out[2])
    assert "checkpoints list: [1, 2, 3, 4, 5]" in out[2]
    # 4: epochs/ removed, 10 epochs, keep 1, no best: exactly one epoch directory.
    assert not any(line.startswith("restarting from epoch") for line in out[3])
    assert sorted(p.name for p in (ckpts / "epochs").iterdir()) == ["010"]
    assert out[3][-2:] == ["checkpoints kept: 1", "checkpoints list: [10]"]
    assert os.readlink(ckpts / "last") == "epochs/010" and not os.path.lexists(ckpts / "best")
    assert (ckpts / "last" / "model.h5").is_file()  # where CANDLE's restart looks
