"""A run root whose path has a space and other shell-special characters: a local sweep through
real Parsl runs, is preempted by a real signal, resumes and completes; Parsl's cluster providers,
which put paths into shell commands unquoted, are refused in one line before anything starts.
And a sweep whose workers never start says so and stops, instead of waiting forever."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import yaml

import candle_restart.sweep.run as sweep_run
from candle_restart.coordinator.policy import Policy
from candle_restart.coordinator.resume import ResumeOutcome
from candle_restart.parsl.configs import parsl_config, shell_safe_run_dir, shell_unsafe
from candle_restart.task import create_task
from candle_restart.task.process import process_start
from tests.helpers import ROOT, runner_env
from tests.programs.trainers import TRAINER

ODD = "my proj $HOME 'q' `id` ;x"  # the folder, and more a shell would expand


def _sweep(folder: Path, epochs: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "trainer.py").write_text(TRAINER)
    config = {
        "name": "spaced",
        "run_root": "runs",
        "command": [sys.executable, "trainer.py"],
        "params": {"epochs": epochs, "epoch_seconds": 0.3, "marks": str(folder / "marks"), "lock": str(folder / "lock")},
        "executor": {"kind": "local", "max_workers": 1},
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(config))
    return folder / "sweep.yaml"


def test_a_local_sweep_in_a_folder_with_a_space_is_preempted_resumes_and_completes(tmp_path: Path) -> None:
    folder = tmp_path / ODD
    source = _sweep(folder, epochs=6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(source)],
        cwd=ROOT,
        env=runner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240  # today's main never starts a worker: this bounds the failure
        marks = folder / "marks"
        while not (marks.exists() and "epoch 1 1" in marks.read_text()):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no task started within 240 s"
            time.sleep(0.1)
        (task,) = [p for p in (folder / "runs").iterdir() if (p / "task.json").exists()]
        os.kill(json.loads((task / "state.json").read_text())["pid"], signal.SIGUSR1)
        output, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "1 tasks: 1 completed" in output or "1 task: 1 completed" in output, output
    exits = [json.loads(line) for line in (task / "runs.jsonl").read_text().splitlines()]
    assert [e["status"] for e in exits if e["event"] == "exit"] == ["preempted", "completed"]
    assert json.loads((task / "ckpts" / "trainer-state.json").read_text()) == {"epoch": 6}


@pytest.mark.parametrize("name", ["my proj", "a$b", "it's", "x;y", "tab\there", "*?[]{}"])
def test_parsl_gets_a_run_dir_without_shell_special_characters(tmp_path: Path, name: str) -> None:
    run_dir = tmp_path / name / ".parsl"
    with shell_safe_run_dir(run_dir) as safe:
        assert not shell_unsafe(safe), safe
        (Path(safe) / "probe").write_text("x")
    assert (run_dir / "probe").read_text() == "x"  # Parsl's files still land in the run root
    assert not Path(safe).exists()  # the link is gone with the run


def test_cluster_kinds_refuse_a_run_root_parsl_cannot_quote(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as err:
        parsl_config({"kind": "slurm"}, tmp_path / ODD / ".parsl", Policy())
    message = str(err.value)
    assert "\n" not in message and ODD in message and "space or shell-special" in message


NO_WORKERS = (
    "import sys\n"
    "import candle_restart.parsl.configs as configs, candle_restart.sweep.run as run\n"
    "run.WORKER_WAIT_SECONDS = 3.0\n"
    "on_path = configs._python_on_path\n"
    "configs._python_on_path = lambda: (on_path(), 'sleep 3600')[1]  # the block hangs before any worker starts\n"
    "from candle_restart.cli import main\n"
    "sys.exit(main(['sweep', 'run', sys.argv[1]]))\n"
)


def test_a_local_sweep_whose_workers_never_start_says_so_and_stops(tmp_path: Path) -> None:
    source = _sweep(tmp_path / "plain", epochs=2)
    proc = subprocess.run(
        [sys.executable, "-c", NO_WORKERS, str(source)],
        cwd=ROOT,
        env=runner_env(),
        capture_output=True,
        text=True,
        timeout=150,  # today's main waits here forever
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no task started in 3 s: Parsl's local workers never started" in proc.stdout, proc.stdout


def test_sweep_run_refuses_a_cluster_kind_in_such_a_folder_before_anything_is_written(tmp_path: Path) -> None:
    source = _sweep(tmp_path / ODD, epochs=2)
    config = yaml.safe_load(source.read_text())
    config["executor"] = {"kind": "lsf"}
    source.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(source)],
        cwd=ROOT,
        env=runner_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "shell-special" in proc.stderr, proc.stderr
    assert not (tmp_path / ODD / "runs").exists()



def test_tasks_waiting_behind_a_running_one_are_not_taken_for_missing_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_run, "WORKER_WAIT_SECONDS", 0.0)
    running, waiting = (create_task(tmp_path / "run", {"epochs": 1, "i": i}, command=["true"]) for i in (0, 1))
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # stands for its runner
    try:
        running.write_state(
            {"status": "running", "pid": runner.pid, "pid_start": process_start(runner.pid), "host": socket.gethostname()}
        )
        said: list[str] = []
        watch = sweep_run._WorkerWatch("local", [running, waiting], tmp_path / "run" / ".parsl", said.append)
        outcomes = cast(list[ResumeOutcome], [SimpleNamespace(status=SimpleNamespace(attempts=1))])
        assert watch.check(outcomes, waiting=True) and watch.check(outcomes, waiting=True)
        assert said == []  # one runner works: the other task waits for a worker, not for workers to exist
    finally:
        runner.kill()
        runner.wait()
    assert not watch.check(outcomes, waiting=True)  # nothing runs, nothing starts: no worker there
    assert said and "Parsl's local workers never started" in said[0]
