"""The PyTorch example sweep (``configs/torch-sweep.yaml``) through Parsl's local executor: its demo
preemption (a real SIGUSR1 from the sweep driver once task 0 committed two checkpoints), exit 75
inside an epoch, the driver's resume at the next batch, and ``status`` and ``results`` showing the
two tasks as they show Keras tasks.

Task 0 trains in lockstep with the test (the example's ``progress_fifo`` hook): it gets bytes for
its first two epochs and 3 batches, then waits until the driver says it sent the signal, so the
signal always lands inside epoch 3.  The resumed task ends bit for bit where an uninterrupted
run of the same parameters, in this process, does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")

from candle_restart.task import TaskDir
from tests.helpers import HANG, ROOT, open_progress, runner_env

SAMPLES, BATCH = 1024, 32
BATCHES = SAMPLES * 3 // 4 // BATCH  # per epoch (the example trains on 3/4 of the samples)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "candle_restart.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, env=runner_env(), capture_output=True, text=True, timeout=HANG)


def test_the_pytorch_sweep_through_parsl_is_preempted_resumed_and_reported(tmp_path: Path) -> None:
    from candle_restart.examples.torch_regression import run

    fifo, ack = tmp_path / "progress", tmp_path / "progress.ack"
    reader = open_progress(fifo)  # the example reports progress only while someone reads
    os.mkfifo(ack)
    writer = os.open(ack, os.O_RDWR)
    config = yaml.safe_load((ROOT / "configs" / "torch-sweep.yaml").read_text())
    assert config["executor"]["kind"] == "local" and config["demo"]["preempt_task"] == 0
    after = int(config["demo"]["after_checkpoints"])
    config["run_root"] = "runs"
    config["params"].update({"epochs": 4, "samples": SAMPLES, "batch_size": BATCH})
    rates = config.pop("vary")["grid"]["learning_rate"]
    config["vary"] = {
        "list": [{"learning_rate": rates[0], "progress_fifo": str(fifo)}, {"learning_rate": rates[1]}]
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    os.write(writer, b"." * (after * BATCHES + 3))  # its first `after` epochs (checkpoints) and 3 batches
    cmd = [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(tmp_path / "sweep.yaml")]
    out = tmp_path / "sweep.out"
    with open(out, "w") as sink:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=runner_env(), stdout=sink, stderr=subprocess.STDOUT, text=True
        )
    try:
        deadline = time.monotonic() + HANG
        while "demo: sent SIGUSR1" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)  # polling the driver's output, with a deadline
        ack.unlink()  # the resumed attempt runs without lockstep
        fifo.unlink()
        os.close(writer)  # the waiting batch end reads b"": it goes on and stops for the signal
        os.close(reader)
        assert proc.wait(timeout=HANG) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    run_root = tmp_path / "runs"
    tasks = sorted(
        (TaskDir(p) for p in run_root.iterdir() if (p / "task.json").exists()), key=lambda t: t.task_id
    )
    assert len(tasks) == 2
    preempted = [t for t in tasks if t.load_spec().params.get("progress_fifo")]
    [task] = preempted
    exits = [e for e in [e.to_json() for e in task.events()] if e["event"] == "exit"]
    assert [e["exit_code"] for e in exits] == [75, 0], exits
    assert exits[0]["cause"] == "preempted" and "SIGUSR1" in str(exits[0]["reason"]), exits[0]
    log = (task.ckpts / "ckpt.log").read_text()
    # Stopped inside epoch 3 (its 4th batch), resumed at the next batch.
    assert "restarting: epoch 3 continues at batch 5 (4 skipped)" in log, log[-3000:]
    params = {k: v for k, v in task.load_spec().params.items() if k != "progress_fifo"}
    whole = run({**params, "output_dir": str(tmp_path / "whole")})
    state = json.loads(task.state_file.read_text())
    assert state is not None and state["status"] == "completed" and state["result"] == whole  # bit for bit

    status = _cli("status", str(run_root), "--json")
    assert status.returncode == 0, status.stderr
    rows = {r["task_id"]: r for r in json.loads(status.stdout)["tasks"]}
    assert {r["state"] for r in rows.values()} == {"completed"}, rows
    assert rows[task.task_id]["preemptions"] == 1, rows[task.task_id]
    assert [r["preemptions"] for k, r in rows.items() if k != task.task_id] == [0]
    results = _cli("results", str(run_root), "--format", "json")
    assert results.returncode == 0, results.stderr
    shown = {r["task_id"]: r for r in json.loads(results.stdout)["tasks"]}
    assert set(shown) == set(rows) and shown[task.task_id]["state"] == "completed", shown
    assert shown[task.task_id]["result"] == whole and shown[task.task_id]["final"] == whole["val_loss"], shown
    assert len(rows[task.task_id]["goodput"]["attempts"]) == 2  # its two attempts, as for a Keras task
    report = _cli("report", str(run_root), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    assert all(task_id in page for task_id in rows)
