"""A CANDLE benchmark, unchanged but for its checkpoint module, through CANDLE's acceptance sequence.

The benchmark (``candle_compat/bmk``) is written as CANDLE's are: a
``candle``-style module (``candle_compat/shim``: candle_lib is not on the
package registry, so the shim is written from CANDLE's documented behaviour)
with ``finalize_parameters``, ``build_optimizer``, a ``CandleRemoteMonitor``
beside the checkpoint callback, CSV data and ``initial_epoch`` from
``J["epoch"]``; one script per API generation.  ``candle_compat/driver.py``
assigns candle_restart's classes onto the shim's checkpoint names and runs the
scripts with ``runpy``, all steps of both generations in one process.

CANDLE's four steps: train 3 epochs; restart to 5; 5 again with
``--ckpt_restart_mode off``; ``rm -r ckpts/epochs`` and 10 epochs with
``--ckpt_keep_limit 1 --ckpt_save_best False``, which must leave exactly one
epoch directory, and, as ``cr-1.sh`` counts them, one ``*.h5`` file with
``--ckpt_model_format h5`` (the develop generation runs so; master runs the default).  Then a kill -9 after epoch 2 and its resume, which must end
bit-for-bit where an uninterrupted run does.  Real TensorFlow, real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from tests.helpers import runner_env, split_steps

DRIVER = Path(__file__).resolve().parent / "candle_compat" / "driver.py"
FOUR_STEPS: list[dict[str, Any]] = [
    {"argv": ["--epochs", "3"]},
    {"argv": ["--epochs", "5"]},
    {"argv": ["--epochs", "5", "--ckpt_restart_mode", "off"]},
    {
        "argv": ["--epochs", "10", "--ckpt_keep_limit", "1", "--ckpt_save_best", "False"],
        "rm": "out/ckpts/epochs",
    },
]

pytestmark = pytest.mark.backends


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(300, 6))
    y = np.tanh(x @ rng.normal(size=6)) + 0.05 * rng.normal(size=300)
    rows = ["f1,f2,f3,f4,f5,f6,target"] + [
        ",".join(f"{v:.6f}" for v in (*r, t)) for r, t in zip(x, y, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def _drive(
    steps: list[dict[str, Any]], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DRIVER), json.dumps(steps)],
        env={**runner_env(), **(env or {})},
        text=True,
        capture_output=True,
        timeout=600,
    )



def _epochs(ckpts: Path) -> list[str]:
    return sorted(p.name for p in (ckpts / "epochs").iterdir())


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _csv(tmp_path_factory.mktemp("data") / "data.csv")


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """A master-generation run of 4 epochs, kill -9'd as epoch 3 begins (epochs 1 and 2 committed)."""
    work = tmp_path_factory.mktemp("killed")
    # Synchronous commits, so epoch 2's is whole when epoch 3 begins; the resume runs with the default.
    argv = ["--epochs", "4", "--train_data", str(data), "--output_dir", "out", "--ckpt_async", "False"]
    step = {"generation": "master", "cwd": str(work), "argv": argv}
    proc = _drive([step], {"CANDLE_COMPAT_KILL_AT_EPOCH": "2"})
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert _epochs(work / "out" / "ckpts") == ["001", "002"]
    return work


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data: Path, killed: Path) -> dict[str, Any]:
    """CANDLE's four steps for each generation, then the resume of ``killed`` and the same run
    uninterrupted; one process.  Returns each generation's directory and stdout by step."""
    common = ["--train_data", str(data), "--output_dir", "out"]
    dirs = {g: tmp_path_factory.mktemp(g) for g in ("develop", "master")}
    # develop: the configuration the README recommends where cr-1.sh checks the run; master: the default.
    formats = {"develop": ["--ckpt_model_format", "h5"], "master": []}
    steps = [
        {
            "generation": g,
            "cwd": str(dirs[g]),
            **s,
            "argv": [*s["argv"], *common, *formats[g], "--run_id", f"step{n}"],
        }
        for g in ("develop", "master")
        for n, s in enumerate(FOUR_STEPS, 1)
    ]
    whole = tmp_path_factory.mktemp("whole")
    steps += [
        {"generation": "master", "cwd": str(killed), "argv": ["--epochs", "4", *common]},
        {"generation": "master", "cwd": str(whole), "argv": ["--epochs", "4", *common]},
    ]
    proc = _drive(steps)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = split_steps(proc.stdout)
    return {
        "develop": (dirs["develop"], out[0:4]),
        "master": (dirs["master"], out[4:8]),
        "resume": out[8],
        "whole": whole,
    }


@pytest.mark.parametrize("generation", ["develop", "master"])
def test_candles_acceptance_sequence_leaves_one_epoch_directory(
    runs: dict[str, Any], generation: str
) -> None:
    work, out = runs[generation]
    ckpts = work / "out" / "ckpts"
    # 1: three epochs.  CANDLE's stdout lines, whole: no timestamp, no prefix.
    assert "Callback initialized." in out[0] and "checkpoints list: [1, 2, 3]" in out[0]
    assert not any(line.startswith("restarting") for line in out[0])
    # 2: restart to 5: J["epoch"] == 3 became initial_epoch (the monitor saw epochs 4 and 5 only).
    assert "restarting from epoch: 3" in out[1] and "checkpoints list: [4, 5]" in out[1]
    monitor = json.loads((work / "out" / "run.step2.json").read_text())
    assert [e["epoch"] for e in monitor["epochs"]] == [4, 5]
    # 3: restart off: a fresh run over the same directory.
    assert not any(line.startswith("restarting") for line in out[2])
    assert "checkpoints list: [1, 2, 3, 4, 5]" in out[2]
    # 4: epochs/ removed, 10 epochs, keep 1, no best: exactly one epoch directory.
    assert "restarting from epoch: 5" not in out[3]
    assert _epochs(ckpts) == ["010"]
    assert out[3][-2:] == ["checkpoints kept: 1", "checkpoints list: [10]"]
    assert os.readlink(ckpts / "last") == "epochs/010" and not os.path.lexists(ckpts / "best")
    # cr-1.sh, after step 4: CKPTS=( $( find . -name '*.h5' ) ); check-count.sh ${#CKPTS[@]} 1
    found = subprocess.run(["find", ".", "-name", "*.h5"], cwd=work, capture_output=True, text=True, check=True)
    info = json.loads((ckpts / "last" / "ckpt-info.json").read_text())
    if generation == "develop":  # --ckpt_model_format h5: CANDLE's model.h5, which Keras loads
        assert found.stdout.split() == ["./out/ckpts/epochs/010/model.h5"] and info["model_file"] == "model.h5"
        model = keras.models.load_model(ckpts / "last" / "model.h5", compile=False)
        assert len(model.get_weights()) == len(_weights(work / "out" / "final.npz"))
    else:  # the default model.keras: loadable too, but cr-1.sh's count is 0
        assert found.stdout.split() == [] and info["model_file"] == "model.keras"


def test_a_kill_minus_9_resumes_bit_for_bit(runs: dict[str, Any], killed: Path) -> None:
    assert "restarting from epoch: 2" in runs["resume"] and "checkpoints list: [3, 4]" in runs["resume"]
    resumed = _weights(killed / "out" / "final.npz")
    whole = _weights(runs["whole"] / "out" / "final.npz")
    assert len(resumed) == len(whole) > 0
    assert all(a.tobytes() == b.tobytes() for a, b in zip(resumed, whole, strict=True))
