"""Several coordinators and running tasks on one run root, coordinators killed with SIGKILL at random:
every task completes, none ever ran twice at the same time, every journal line is well formed."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from candle_restart.coordinator import LocalBackend, scan
from tests.helpers import ROOT, journal, report, runner_env, toy_task, trials


def _coordinator(root: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "candle_restart.cli",
        "resume",
        str(root),
        "--watch",
        "0.2",
        "--backoff",
        "0",
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=runner_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def test_coordinators_killed_at_random_never_run_a_task_twice_at_once(tmp_path: Path) -> None:
    rng = random.Random(11)
    root = tmp_path / "run"
    tasks = [toy_task(root, f"r{i:02d}", preempt_at=1, epochs=3) for i in range(30)]
    running = [_coordinator(root) for _ in range(4)]
    kills = trials(6)
    for _ in range(kills):
        time.sleep(rng.uniform(0.05, 0.4))  # the random instant of the kill, not synchronisation
        victim = running.pop(rng.randrange(len(running)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        running.append(_coordinator(root))
    for proc in running:  # each exits once every task is completed or given up
        assert proc.wait(timeout=600) == 0
    assert [s.state for s in scan(root, {"local": LocalBackend()})] == ["completed"] * len(tasks)
    for task in tasks:
        events = journal(task.path)  # every line whole
        runs = [e.kind for e in events if e.kind in ("start", "exit")]
        assert runs == ["start", "exit"] * (len(runs) // 2), f"{task.task_id} ran twice at once: {runs}"
        assert runs.count("start") == 2  # the preempted run and the one that completed, nothing more
        intents = sum(e.kind == "submit_intent" for e in events)
        abandoned = sum(e.kind == "submit_abandoned" for e in events)
        assert intents == 2 + abandoned  # an intent a killed coordinator left is abandoned, never doubled
    report("coordinators killed at random", trials=kills, tasks=len(tasks), ran_twice=0, lost=0)
