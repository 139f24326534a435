"""Random SIGUSR1 and SIGKILL of runners across a dozen ``command`` tasks driven by ``resume --watch``:
every task completes at its last epoch and no two attempts of a task ever overlap.

Real processes throughout: the runners the local backend starts, real non-Keras trainers that keep
their own state file (`tests.programs.trainers`; a third of them behind a launcher, so a killed
runner leaves a grandchild behind), real signals.  Each trainer holds a ``flock`` for its whole
life and records ``overlap=True`` if it starts while an earlier attempt's trainer lives: the
kernel's lock, not timing, is the witness.  A victim is chosen among runners whose current attempt
has trained an epoch (so every attempt shows progress and the budgets are not what is tested).
The kill phase lasts ``20 s x CANDLE_RESTART_TORTURE_SCALE`` (``make torture``: minutes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from candle_restart.records.jsontypes import JsonObject
from candle_restart.task import create_task
from candle_restart.task.process import process_start
from tests.helpers import ROOT, report, runner_env, trials
from tests.programs.trainers import LAUNCHER, TRAINER

TASKS = 12
QUOTA = TASKS // 2  # signals of each kind the adversary sends at least
EPOCH_SECONDS = 0.2


def _running_runner(task: Path) -> tuple[int, int] | None:
    """(pid, attempt) of the task's live runner whose attempt has trained an epoch, else None."""
    try:
        state = json.loads((task / "state.json").read_text())
    except (OSError, ValueError):
        return None
    pid, attempt = state.get("pid"), state.get("attempt")
    if state.get("status") != "running" or not isinstance(pid, int) or process_start(pid) != state.get("pid_start"):
        return None
    marks = Path(json.loads((task / "task.json").read_text())["params"]["marks"])
    lines = marks.read_text().splitlines() if marks.exists() else []
    return (pid, attempt) if any(line.startswith(f"epoch {attempt} ") for line in lines) else None


def test_random_sigusr1_and_sigkill_of_runners_never_overlap_attempts(tmp_path: Path) -> None:
    kill_seconds = 20.0 * trials(1)
    epochs = int(kill_seconds * 3)
    (tmp_path / "trainer.py").write_text(TRAINER)
    (tmp_path / "launcher.py").write_text(LAUNCHER)
    tasks: list[Path] = []
    for i in range(TASKS):
        command = [sys.executable, str(tmp_path / "trainer.py")]
        if i % 3 == 0:
            command = [sys.executable, str(tmp_path / "launcher.py"), str(tmp_path / "trainer.py")]
        params: JsonObject = {
            "epochs": epochs,
            "epoch_seconds": EPOCH_SECONDS,
            "marks": str(tmp_path / f"marks-{i}"),
            "lock": str(tmp_path / f"lock-{i}"),
            "index": i,
        }
        tasks.append(create_task(tmp_path / "run", params, command=command, sweep="kills").path)
    budgets = ["--max-node-failures", "100000", "--max-preemptions", "100000", "--max-failures", "0"]
    watch = subprocess.Popen(
        [sys.executable, "-m", "candle_restart.cli", "resume", str(tmp_path / "run"), "--watch", "0.5", *budgets],
        cwd=ROOT,
        env=runner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rng = random.Random(27)
    sent = {"SIGUSR1": 0, "SIGKILL": 0}
    try:
        end = time.monotonic() + kill_seconds
        # Past the kill phase only while the adversary has not yet sent its quota (a loaded machine
        # leaves fewer runners that have trained an epoch), and never past a second phase.
        while watch.poll() is None and (
            time.monotonic() < end or (min(sent.values()) < QUOTA and time.monotonic() < end + kill_seconds)
        ):
            victims = [found for t in tasks if (found := _running_runner(t)) is not None]
            if victims:
                pid, _attempt = rng.choice(victims)
                sig = rng.choice([signal.SIGUSR1, signal.SIGKILL])
                try:
                    os.kill(pid, sig)
                    sent[sig.name] += 1
                except ProcessLookupError:
                    pass
            time.sleep(rng.uniform(0.1, 0.6))  # the pace of the adversary, not a synchronisation
        output, _ = watch.communicate(timeout=300 + 3 * epochs * EPOCH_SECONDS)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    overlaps, incomplete = [], []
    for i, task in enumerate(tasks):
        marks = (tmp_path / f"marks-{i}").read_text()
        overlaps += [line for line in marks.splitlines() if "overlap=True" in line]
        state = json.loads((task / "state.json").read_text())
        saved = json.loads((task / "ckpts" / "trainer-state.json").read_text())
        if state["status"] != "completed" or saved != {"epoch": epochs}:
            incomplete.append((task.name, state["status"], saved))
    attempts = sum(
        sum(json.loads(line)["event"] == "start" for line in (t / "runs.jsonl").read_text().splitlines())
        for t in tasks
    )
    report(
        "random SIGUSR1/SIGKILL of command runners",
        trials=sent["SIGUSR1"] + sent["SIGKILL"],
        tasks=TASKS,
        seconds=kill_seconds,
        sigusr1=sent["SIGUSR1"],
        sigkill=sent["SIGKILL"],
        attempts=attempts,
        overlapping_runners=len(overlaps),  # two attempts of one task training at once
        lost=len(incomplete),  # a task that did not complete at its last epoch
    )
    assert watch.returncode == 0, output[-3000:]
    assert sent["SIGKILL"] >= QUOTA and sent["SIGUSR1"] >= QUOTA, sent  # the adversary did act
    assert not overlaps, overlaps
    assert not incomplete, (incomplete, output[-3000:])
