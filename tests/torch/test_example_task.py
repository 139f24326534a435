"""The PyTorch example benchmark as a task of the service: the runner, a real SIGUSR1 inside an
epoch, exit 75, the resume at the next batch, and ``status``/``results`` showing it as they show a
Keras task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")

from candle_restart.sweep.schema import parse_sweep
from candle_restart.task import create_task
from tests.helpers import ROOT, cli, run_runner, state

ENTRY = "candle_restart.examples.torch_regression:run"
PARAMS = {"epochs": 3, "samples": 1024, "batch_size": 32, "learning_rate": 0.01, "ckpt_checksum": True}


def test_a_preempted_pytorch_task_resumes_and_ends_where_an_uninterrupted_run_does(tmp_path: Path) -> None:
    from candle_restart.examples.torch_regression import run

    whole = run({**PARAMS, "output_dir": str(tmp_path / "whole")})
    # A real SIGUSR1 to the runner's process inside batch 5 of epoch 2 (the example's hook).
    task = create_task(tmp_path / "runs", {**PARAMS, "signal_at": "2:5"}, entry=ENTRY, sweep="torch")
    code, err = run_runner(task.path)
    assert code == 75, err[-3000:]
    first = state(task.path)
    assert first["status"] == "preempted" and first["cause"] == "preempted"
    position = json.loads((task.path / "ckpts" / "last" / "ckpt-info.json").read_text())["position"]
    assert position == {"epoch": 2, "batch": 5}
    code, err = run_runner(task.path)
    assert code == 0, err[-3000:]
    done = state(task.path)
    assert done["status"] == "completed" and done["result"] == whole  # bit for bit: the same floats
    assert (
        "restarting: epoch 2 continues at batch 6 (5 skipped)"
        in (task.path / "ckpts" / "ckpt.log").read_text()
    )
    status = cli("status", tmp_path / "runs", "--json")
    assert status.returncode == 0 and "completed" in status.stdout, status.stderr
    results = cli("results", tmp_path / "runs")
    assert results.returncode == 0 and task.path.name in results.stdout and "completed" in results.stdout


def test_the_pytorch_sweep_config_is_a_valid_sweep_of_the_example() -> None:
    sweep = parse_sweep(ROOT / "configs" / "torch-sweep.yaml")
    assert sweep.entry == ENTRY and sweep.demo is not None
