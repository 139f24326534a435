"""Ctrl-C on ``candle-restart sweep run``: a real SIGINT to a real driver's process group (as a
terminal sends it), a real Parsl HTEX, a real training that commits a checkpoint and exits 75."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from candle_restart.sweep import expand, parse_sweep
from tests.helpers import ROOT, open_progress, progress, runner_env


def test_ctrl_c_stops_the_tasks_with_a_checkpoint_and_says_how_to_continue(tmp_path: Path) -> None:
    fifo = tmp_path / "progress"
    fd = open_progress(fifo)
    config = {
        "name": "int",
        "run_root": "runs",
        "entry": "candle_restart.examples.regression:run",
        "params": {"epochs": 500, "samples": 256, "batch_size": 32, "progress_fifo": str(fifo)},
        "executor": {"kind": "local", "max_workers": 1},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    (task,) = expand(parse_sweep(tmp_path / "sweep.yaml")).tasks
    driver = subprocess.Popen(
        [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(tmp_path / "sweep.yaml")],
        cwd=ROOT,
        env=runner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a shell's foreground job
    )
    try:
        next(progress(fd, driver))  # training (the driver's stderr ends the wait if it dies first)
        runner = json.loads(task.state_file.read_text())["pid"]
        os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        out, err = driver.communicate(timeout=120)
    finally:
        os.close(fd)
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, out + err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err, out + err
    assert f"sent SIGUSR1 to its runner (pid {runner})" in out
    assert f"continue with `candle-restart resume {task.path.parent}`" in out
    assert "interrupted: 1 of 1 running tasks stopped with a checkpoint" in out
    assert re.search(r"^\d\d:\d\d:\d\d progress: 1 tasks: 1 queued; ", out, re.M), out
    assert "(parsl )" not in out and "(parsl task 0)" in out
    state = json.loads(task.state_file.read_text())
    assert state["status"] == "preempted" and state["exit_code"] == 75 and state["checkpoint"], state
    exits = [e for e in task.events() if e.kind == "exit"]
    assert len(exits) == 1  # Parsl did not rerun the stopped task
