"""The runner's hang watchdog with real processes: a training blocked forever inside a batch or a
commit is stopped, recorded as ``hang`` and resumed to completion; slow but steady batches are
never stopped; a command's walltime halt is recorded ``timeout`` (its exit 75 alone cannot say).

The training is `tests.programs.hang_toy` (real commits through the core, no TensorFlow), run by
the real runner (`run_runner`, or the local backend's detached runners through `resume`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from candle_restart.coordinator import Policy, resume
from candle_restart.coordinator.local import LocalBackend
from candle_restart.records.journal import JournalEvent
from candle_restart.records.jsontypes import JsonObject
from candle_restart.runtime.envvars import EXIT_SECONDS_ENV
from candle_restart.task import TaskDir, create_task
from candle_restart.task.launch import task_environment
from tests.helpers import journal, run_runner, state
from tests.programs.hang_toy import COMMAND

TOY = "tests.programs.hang_toy:run"
# Tight limits, so a hang is seen in seconds: k = 3, grace 2 s, first step and commit 10 s.
TIGHT: JsonObject = {"ckpt_hang_factor": 3, "ckpt_hang_grace": 2, "ckpt_hang_first": 10}


def _exits(task: TaskDir) -> list[JournalEvent]:
    return [e for e in journal(task.path) if e.kind == "exit"]


def _resume_to_the_end(root: Path, task: TaskDir) -> None:
    backend = LocalBackend()
    for _ in range(3):
        resume(root, backend, Policy())
        backend.wait_all()
        if state(task.path)["status"] == "completed":
            return
    raise AssertionError(f"not completed: {state(task.path)}")


def _epochs_committed(task: TaskDir) -> list[str]:
    return sorted(p.name for p in (task.ckpts / "epochs").iterdir() if not p.name.startswith("."))


def test_an_entry_blocked_forever_inside_a_batch_is_stopped_recorded_as_hang_and_resumed(tmp_path: Path) -> None:
    params: JsonObject = {"epochs": 4, "batches": 3, "step_seconds": 0.05, "hang": "batch:3:2", **TIGHT}
    task = create_task(tmp_path / "run", params, entry=TOY)
    code, err = run_runner(task.path)
    assert code == 75, err
    ended = state(task.path)
    assert (ended["status"], ended["cause"]) == ("preempted", "hang"), ended
    assert ended["reason"].startswith("hung: no heartbeat for "), ended["reason"]
    assert "the training did not stop, the runner exited" in ended["reason"]  # blocked: the signal could not help
    assert ended["checkpoint"]["epoch"] == 2  # the last commit before the hang
    assert [(e.cause, e.exit_code) for e in _exits(task)] == [("hang", 75)]
    _resume_to_the_end(tmp_path / "run", task)
    assert [e.cause for e in _exits(task)] == ["hang", None]
    assert (task.ckpts / "last" / "model.bin").read_bytes() == b"epoch 4"


def test_a_command_blocked_forever_inside_a_commit_is_killed_recorded_as_hang_and_resumed(tmp_path: Path) -> None:
    params: JsonObject = {"epochs": 5, "batches": 2, "step_seconds": 0.05, "hang": "commit:3", **TIGHT}
    task = create_task(tmp_path / "run", params, command=COMMAND)
    code, err = run_runner(task.path)
    assert code == 75, err
    ended = state(task.path)
    assert (ended["status"], ended["cause"]) == ("preempted", "hang"), ended
    assert "waiting for a commit" in ended["reason"], ended["reason"]
    assert ended["reason"].endswith("ended (killed)"), ended["reason"]
    assert "killing its process group" in err
    assert _epochs_committed(task)[-1] == "002"  # epoch 3's commit never happened
    _resume_to_the_end(tmp_path / "run", task)
    assert [e.cause for e in _exits(task)] == ["hang", None]
    assert (task.ckpts / "last" / "model.bin").read_bytes() == b"epoch 5"


def test_slow_but_steady_batches_are_never_stopped(tmp_path: Path) -> None:
    # Each batch takes 2 s, as long as the grace plus a poll: only the observed steps keep it alive.
    params = {"epochs": 2, "batches": 3, "step_seconds": 2.0, "ckpt_hang_factor": 3, "ckpt_hang_grace": 1}
    task = create_task(tmp_path / "run", {**params, "ckpt_hang_first": 10}, command=COMMAND)  # a slow start is not a hang
    code, err = run_runner(task.path)
    assert code == 0, err
    assert state(task.path)["status"] == "completed"
    assert "hung" not in err


def test_a_commands_walltime_halt_is_recorded_as_timeout(tmp_path: Path) -> None:
    # 4 s of allocation, 1 s epochs: the core halts (the margin is its 5 s floor) and exits 75.
    params = {"epochs": 20, "batches": 2, "step_seconds": 0.5, "ckpt_walltime": 4, "ckpt_hang_factor": 0}
    task = create_task(tmp_path / "run", params, command=COMMAND)
    code, err = run_runner(task.path)
    assert code == 75, err
    ended = state(task.path)
    assert (ended["status"], ended["cause"]) == ("preempted", "timeout"), ended
    (ended_event,) = _exits(task)
    assert ended_event.cause == "timeout"
    # The runner timed the exit (stop to process end); the next attempt's margin covers it.
    took = ended_event.extras.get("exit_seconds")
    assert isinstance(took, float) and 0.0 <= took < 60.0, ended_event
    assert task_environment({}, task, 2)[EXIT_SECONDS_ENV] == f"{took:.3f}"


def test_a_keras_training_blocked_inside_a_batch_is_stopped_and_recorded_as_hang(tmp_path: Path) -> None:
    # The callback's own beats (batch ends, validation, commits); the first step's floor covers
    # TensorFlow's compilation on a busy machine, and the longest step gap the runner timed before
    # the hang (keras_hang makes sure it timed one) sets the limit: k = 1 keeps the test short.
    # (Resuming to the end: the toy's tests.)
    first = 120
    params = {"epochs": 3, "ckpt_hang_factor": 1, "ckpt_hang_grace": 3, "ckpt_hang_first": first}
    task = create_task(tmp_path / "run", params, entry="tests.programs.keras_hang:run")
    code, err = run_runner(task.path)
    assert code == 75, err
    ended = state(task.path)
    assert (ended["status"], ended["cause"], ended["checkpoint"]["epoch"]) == ("preempted", "hang", 1), ended
    assert "after its last beat (step)" in ended["reason"], ended["reason"]
    limit = re.search(r"the limit was (\d+) s", ended["reason"])
    assert limit is not None and int(limit.group(1)) < first, ended["reason"]  # the steps', not the floor


# A command that keeps the documented contract by itself: it touches $CANDLE_RESTART_HEARTBEAT once
# a step (or, with --beat=0, never: it opted out), and on its first attempt blocks in step 4.
TOUCHING = r"""
import os, sys, threading, time
import sys
from pathlib import Path
beat = "--beat=0" not in sys.argv
for step in range(6):
    time.sleep(0.3)
    if step == 3 and os.environ["CANDLE_RESTART_ATTEMPT"] == "1" and beat:
        threading.Event().wait()
    if beat:
        Path(os.environ["CANDLE_RESTART_HEARTBEAT"]).write_text(f"step {step}\n")
"""


def test_a_command_touching_the_heartbeat_file_itself_is_watched_and_one_that_never_does_is_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "touching.py").write_text(TOUCHING)
    command = [sys.executable, str(tmp_path / "touching.py")]
    watched = create_task(tmp_path / "run", {"epochs": 1, "beat": 1, **TIGHT}, command=command)
    code, err = run_runner(watched.path)
    assert code == 75, err
    assert state(watched.path)["cause"] == "hang", state(watched.path)
    silent = create_task(tmp_path / "run", {"epochs": 1, "beat": 0, **TIGHT, "ckpt_hang_first": 0.5}, command=command)
    code, err = run_runner(silent.path)
    assert code == 0, err  # 2 s without a beat, 4 times its "first step" limit: not watched
