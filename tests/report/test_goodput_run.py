"""Goodput on a real run: the demo sweep's task, preempted by a real SIGUSR1 and resumed.

Real Keras training through the sweep driver (local executor), real commits and signals. The
test checks the figures against the records themselves: the task's wall time is its first
submission to its last exit in the journal, the parts that ``status --json`` prints add up to
it within 1%, each attempt's training began with a ``train_start`` event, the resumed attempt
restored a checkpoint, and the report leads with the same goodput.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from candle_restart.records.epochs import read_events
from candle_restart.report.goodfacts import seconds
from candle_restart.report.goodput import PARTS
from candle_restart.task import TaskDir
from tests.helpers import ROOT, runner_env

DEMO = ROOT / "configs" / "demo.yaml"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo sweep cut to one task of 4 epochs, its preemption after the first checkpoint."""
    base = tmp_path_factory.mktemp("goodput")
    config = yaml.safe_load(DEMO.read_text())
    config["run_root"] = "runs"
    config["params"].update({"epochs": 4, "samples": 2048})
    config["vary"] = {"grid": {"learning_rate": [0.01]}}
    config["demo"]["after_checkpoints"] = 1
    (base / "demo.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(base / "demo.yaml")]
    done = subprocess.run(cmd, cwd=ROOT, env=runner_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return base / "runs"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "candle_restart.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, env=runner_env(), capture_output=True, text=True, timeout=300)


def test_status_json_parts_add_up_to_the_wall_time_of_the_records(demo_run: Path) -> None:
    (task_dir,) = [p for p in demo_run.iterdir() if (p / "task.json").exists()]
    task = TaskDir(task_dir)
    journal = task.read_journal()
    exits = [e for e in journal if e["event"] == "exit"]
    assert [e["exit_code"] for e in exits] == [75, 0], journal  # preempted once, then completed
    first = min(seconds(e["time"]) or 0 for e in journal if e["event"] in ("submit_intent", "submitted"))
    wall = (seconds(exits[-1]["time"]) or 0) - first

    events = read_events(task.ckpts)
    assert [e.kind for e in events].count("train_start") == 2  # one per attempt
    assert [e.seconds is not None for e in events if e.kind == "restart"] == [True, True]

    status = _cli("status", str(demo_run), "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    (record,) = doc["tasks"]
    good = record["goodput"]
    parts = good["parts"]
    assert set(parts) == set(PARTS)
    assert abs(sum(parts.values()) - wall) <= 0.01 * wall, (parts, wall)
    assert abs(good["wall_seconds"] - wall) <= 0.01 * wall
    assert parts["productive"] > 0 and parts["startup"] > 0 and parts["restore"] > 0 and parts["checkpoint"] > 0
    assert parts["failed"] == 0
    assert 0 < good["goodput"] < 1
    assert doc["goodput"]["parts"] == parts  # one task: the sweep's figures are its own
    first_attempt, second = good["attempts"]  # each attempt's own split, within the task's
    assert first_attempt["parts"]["restore"] + second["parts"]["restore"] == pytest.approx(parts["restore"], abs=2e-3)
    assert second["parts"]["restore"] > 0 and first_attempt["parts"]["queue"] == 0

    results = _cli("results", str(demo_run), "--format", "json")
    assert json.loads(results.stdout)["tasks"][0]["goodput"] == good["goodput"]

    report = _cli("report", str(demo_run), "-o", str(demo_run.parent / "report"))
    assert report.returncode == 0, report.stderr
    html = (demo_run.parent / "report" / "index.html").read_text()
    lead = re.search(r'<section id="goodput"><h2 data-goodput="([0-9.]+)">goodput (\d+)%</h2>', html)
    assert lead is not None and html.index('id="goodput"') < html.index('id="summary"')
    assert float(lead.group(1)) == pytest.approx(good["goodput"], abs=1e-3)
    assert html.count(f'data-goodput="{lead.group(1)}"') == 2  # the lead and the task's own line
