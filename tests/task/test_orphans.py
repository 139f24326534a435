"""A killed runner's command does not train beside its successor (real processes, real SIGKILL).

The command holds a ``flock`` for its whole life and records ``overlap=True`` when it starts
while an earlier attempt's process still lives (`tests.programs.trainers`)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from candle_restart.records.jsontypes import JsonObject
from candle_restart.task import create_task
from candle_restart.task.process import process_start
from tests.helpers import journal, run_runner, start_runner, state
from tests.programs.trainers import ESCAPING_LAUNCHER, LAUNCHER, TRAINER


def wait_until(what: str, check: Callable[[], bool], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def marks(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(autouse=True)
def _no_trainer_left(tmp_path: Path) -> Iterator[None]:
    """Whatever the outcome, no trainer of the test outlives it."""
    yield
    for m in marks(tmp_path / "marks"):
        if m[0] == "start" and process_start(int(m[2])) is not None:
            os.kill(int(m[2]), signal.SIGKILL)


def trainer_task(tmp_path: Path, how: str, epochs: int = 6) -> tuple[Path, Path]:
    """A ``command`` task of the trainer (``how``: run directly, through the launcher, or through the
    launcher in a session of its own): (task dir, marks)."""
    (tmp_path / "trainer.py").write_text(TRAINER)
    launcher = {"grandchild": LAUNCHER, "escaped": ESCAPING_LAUNCHER}.get(how)
    command = [sys.executable, str(tmp_path / "trainer.py")]
    if launcher:
        (tmp_path / "launcher.py").write_text(launcher)
        command = [sys.executable, str(tmp_path / "launcher.py"), str(tmp_path / "trainer.py")]
    params: JsonObject = {"epochs": epochs, "epoch_seconds": 0.3, "marks": str(tmp_path / "marks"), "lock": str(tmp_path / "lock")}
    task = create_task(tmp_path / "run", params, command=command)
    return task.path, tmp_path / "marks"


@pytest.mark.parametrize("how", ["child", "grandchild", "escaped"])
def test_sigkill_of_the_runner_ends_its_command_before_the_next_attempt(tmp_path: Path, how: str) -> None:
    task, marks_file = trainer_task(tmp_path, how, epochs=30 if how == "escaped" else 6)
    runner = start_runner(task)
    wait_until("the first epoch", lambda: any(m[:2] == ["epoch", "1"] for m in marks(marks_file)))
    first = next(m for m in marks(marks_file) if m[0] == "start")
    trainer_pid = int(first[2])
    runner.kill()  # SIGKILL: nothing of the runner runs after it
    runner.wait()
    if how != "escaped":  # the command's process group dies with its runner, successor or not
        wait_until("the trainer to die with its runner", lambda: process_start(trainer_pid) is None, 30)
    code, err = run_runner(task)  # the next attempt, at once, on this host
    assert code == 0, err
    assert process_start(trainer_pid) is None
    starts = [m for m in marks(marks_file) if m[0] == "start"]
    assert [s[1] for s in starts] == ["1", "2"]
    assert all(s[3] == "overlap=False" for s in starts), marks_file.read_text()
    after = marks(marks_file)[marks(marks_file).index(starts[1]) :]
    assert not [m for m in after if m[:2] == ["epoch", "1"]], marks_file.read_text()  # attempt 1 trained no more
    assert state(task)["status"] == "completed"
    second_start = [e for e in journal(task) if e.kind == "start"][-1]
    if how == "escaped":  # out of the group, it outlived its runner: ended before attempt 2 started
        assert second_start.extras.get("ended_pids") == [trainer_pid], second_start
        assert f"pids [{trainer_pid}]" in err
    else:
        assert "ended_pids" not in second_start.extras
    assert os.path.exists(task / "ckpts" / "trainer-state.json")


def test_a_process_the_command_leaves_behind_is_ended_with_its_attempt(tmp_path: Path) -> None:
    (tmp_path / "trainer.py").write_text(TRAINER)
    script = tmp_path / "leave.py"  # starts a trainer in the background and exits 0 at once
    script.write_text(
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, {str(tmp_path / 'trainer.py')!r}, *sys.argv[1:]], start_new_session=True)\n"
    )
    params: JsonObject = {"epochs": 1000, "epoch_seconds": 0.3, "marks": str(tmp_path / "marks"), "lock": str(tmp_path / "lock")}
    task = create_task(tmp_path / "run", params, command=[sys.executable, str(script)])
    code, err = run_runner(task.path)
    assert code == 0, err
    started = [m for m in marks(tmp_path / "marks") if m[0] == "start"]
    if started:  # it may have been ended before it wrote anything
        assert process_start(int(started[0][2])) is None
    assert "ending 1 process(es) the training left" in err
