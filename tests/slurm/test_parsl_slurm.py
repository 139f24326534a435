"""A sweep through Parsl's SlurmProvider against the real local Slurm: completes with one task preempted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from candle_restart.coordinator import scan
from tests.helpers import ROOT, runner_env


def test_two_task_sweep_through_slurm_completes_with_one_preempted(tmp_path: Path, slurm_conf: str) -> None:
    config = {
        "name": "slurm2",
        "run_root": "runs",
        "entry": "tests.coordinator.toy:run",
        "params": {"epochs": 3},
        "vary": {"list": [{"preempt_at": 1}, {"preempt_at": 0}]},
        "executor": {
            "kind": "slurm",
            "max_workers": 2,
            "slurm": {"partition": "debug", "walltime": "00:10:00", "address": "127.0.0.1"},
        },
        "restart": {"max_failures": 1, "max_preemptions": 3},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    env = {**runner_env(), "SLURM_CONF": slurm_conf}
    proc = subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(tmp_path / "sweep.yaml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = scan(tmp_path / "runs", {})
    assert [s.state for s in statuses] == ["completed", "completed"]
    assert sorted(s.preemptions for s in statuses) == [0, 1]
    for s in statuses:
        starts = [
            e
            for e in (tmp_path / "runs" / s.task_id / "journal.jsonl").read_text().splitlines()
            if '"start"' in e
        ]
        assert all('"job_id"' in line for line in starts), "the runner did not run inside a Slurm job"
