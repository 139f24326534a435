"""Goodput on a real run: the demo sweep's task, preempted by a real SIGUSR1 and resumed.

Real Keras training through the sweep driver (local executor), real commits and signals. The
test checks the figures against the records themselves: the task's wall time is its first
submission to its last exit in the journal, the parts that ``status --json`` prints add up to
it within 1%, each attempt's training began with a ``train_start`` event, the resumed attempt
restored a checkpoint, and the report leads with the same goodput.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from candle_restart.records.epochs import read_events
from candle_restart.report.goodfacts import seconds
from candle_restart.report.goodput import PARTS
from candle_restart.task import TaskDir
from tests.helpers import HANG, ROOT, open_progress, runner_env

DEMO = ROOT / "configs" / "demo.yaml"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo sweep cut to one task of 4 epochs, its preemption (the demo's SIGUSR1) after the first
    checkpoint. The training waits at each batch end for a byte from ``progress.ack`` (the example's
    lockstep hook): it gets enough for its first epoch and 3 batches, then waits until the driver says
    it sent the signal, so the signal always lands mid-training."""
    base = tmp_path_factory.mktemp("goodput")
    fifo, ack = base / "progress", base / "progress.ack"
    reader = open_progress(fifo)  # the example reports progress only while someone reads
    os.mkfifo(ack)
    writer = os.open(ack, os.O_RDWR)
    config = yaml.safe_load(DEMO.read_text())
    config["run_root"] = "runs"
    config["params"].update({"epochs": 4, "samples": 2048, "batch_size": 32, "progress_fifo": str(fifo)})
    config["vary"] = {"grid": {"learning_rate": [0.01]}}
    config["demo"]["after_checkpoints"] = 1
    (base / "demo.yaml").write_text(yaml.safe_dump(config))
    os.write(writer, b"." * (2048 // 32 + 3))  # epoch 1 (its checkpoint) and 3 batches of epoch 2
    cmd = [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(base / "demo.yaml")]
    with open(base / "sweep.out", "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=runner_env(), stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + HANG
        while "demo: sent SIGUSR1" not in (base / "sweep.out").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (base / "sweep.out").read_text()
            time.sleep(0.1)  # polling the driver's output, with a deadline
        ack.unlink()  # the resumed attempt runs without lockstep
        fifo.unlink()
        os.close(writer)  # the waiting batch end reads b"": it goes on and stops for the signal
        os.close(reader)
        assert proc.wait(timeout=HANG) == 0, (base / "sweep.out").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return base / "runs"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "candle_restart.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, env=runner_env(), capture_output=True, text=True, timeout=300)


def test_status_json_parts_add_up_to_the_wall_time_of_the_records(demo_run: Path) -> None:
    (task_dir,) = [p for p in demo_run.iterdir() if (p / "task.json").exists()]
    task = TaskDir(task_dir)
    journal = task.events()
    exits = [e for e in journal if e.kind == "exit"]
    assert [e.exit_code for e in exits] == [75, 0], journal  # preempted once, then completed
    first = min(seconds(str(e.time)) or 0 for e in journal if e.kind in ("submit_intent", "submitted"))
    wall = (seconds(str(exits[-1].time)) or 0) - first

    events = read_events(task.ckpts)
    assert [e.kind for e in events].count("train_start") == 2  # one per attempt
    assert [e.seconds is not None for e in events if e.kind == "restart"] == [True, True], events

    status = _cli("status", str(demo_run), "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    (record,) = doc["tasks"]
    good = record["goodput"]
    parts = good["parts"]
    assert set(parts) == set(PARTS)
    assert abs(sum(parts.values()) - wall) <= 0.01 * wall, (parts, wall)
    assert abs(good["wall_seconds"] - wall) <= 0.01 * wall
    assert parts["productive"] > 0 and parts["startup"] > 0 and parts["restore"] > 0, good
    assert parts["checkpoint"] > 0 and parts["failed"] == 0, good
    assert 0 < good["goodput"] < 1, good
    assert doc["goodput"]["parts"] == parts  # one task: the sweep's figures are its own
    first_attempt, second = good["attempts"]  # each attempt's own split, within the task's
    assert first_attempt["parts"]["restore"] + second["parts"]["restore"] == pytest.approx(parts["restore"], abs=2e-3)
    assert second["parts"]["restore"] > 0 and first_attempt["parts"]["queue"] == 0, good
    assert good["queue_wait_seconds"] is None and doc["goodput"]["queue_wait_seconds"] is None  # local: unknown
    assert good["halt_unused_seconds"] == 0  # no halt before a walltime

    results = _cli("results", str(demo_run), "--format", "json")
    row = json.loads(results.stdout)["tasks"][0]
    assert row["goodput"] == good["goodput"] and row["queue_wait_seconds"] is None and row["halt_unused_seconds"] == 0

    report = _cli("report", str(demo_run), "-o", str(demo_run.parent / "report"))
    assert report.returncode == 0, report.stderr
    html = (demo_run.parent / "report" / "index.html").read_text()
    lead = re.search(r'<section id="goodput"><h2 data-goodput="([0-9.]+)">goodput (\d+)%</h2>', html)
    assert lead is not None and html.index('id="goodput"') < html.index('id="summary"'), html[:3000]
    assert float(lead.group(1)) == pytest.approx(good["goodput"], abs=1e-3)
    assert html.count(f'data-goodput="{lead.group(1)}"') == 2  # the lead and the task's own line
    shown = dict(re.findall(r'<tr data-part="(\w+)"><td>\w+</td><td>([0-9.]+)</td>', html))
    assert set(shown) == set(PARTS) - {"queue"}
    assert '<tr data-part="queue"><td>queue</td><td>unknown</td>' in html  # the local executor does not say
    assert abs(sum(map(float, shown.values())) - wall) <= 0.01 * wall, (shown, wall)  # the page's parts too
