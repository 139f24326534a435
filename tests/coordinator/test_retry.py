"""resume --retry-failed: failed, bad-input and given-up tasks run again once the cause is fixed (real runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from candle_restart.cli import main
from candle_restart.coordinator import LocalBackend, scan
from candle_restart.coordinator.backend import Backend
from candle_restart.task import TaskDir, run_task
from tests.helpers import ROOT, preempted_task, runner_env, submitted_pids, toy_task, wait_for_pids

BACKENDS: dict[str, Backend] = {"local": LocalBackend()}


def _events(task: TaskDir, kind: str) -> int:
    return sum(e.kind == kind for e in task.events())


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_retry_failed_reruns_what_failed_and_leaves_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, fixed = tmp_path / "run", tmp_path / "input.txt"
    failed = toy_task(root, "failed", needs=str(fixed))  # a training error until the file exists
    bad = toy_task(root, "bad", requires=str(fixed))  # bad input until the file exists
    assert run_task(failed.path) == 1 and run_task(bad.path) == 2
    gave_up = preempted_task(root, "gaveup")  # preempted once: at the cap of --max-preemptions 1
    done = toy_task(root, "done")
    assert run_task(done.path) == 0
    policy = ["--max-failures", "1", "--max-preemptions", "1"]

    before = _files(root)
    assert main(["resume", str(root), "--dry-run", *policy]) == 0
    assert capsys.readouterr().out.count("-> give_up") == 3  # without --retry-failed: all three given up
    assert main(["resume", str(root), "--retry-failed", done.task_id, "--dry-run", *policy]) == 0
    out = capsys.readouterr().out
    assert f"{done.task_id}: completed; not retried" in out and "would be retried: 0 task(s)" in out
    assert main(["resume", str(root), "--retry-failed", "nosuchtask", *policy]) == 2
    assert "nosuchtask: is not a task of this run root" in capsys.readouterr().err
    assert _files(root) == before, "a dry run or a refused retry wrote something"

    fixed.write_text("the environment is fixed")
    assert main(["resume", str(root), "--retry-failed", *policy]) == 0
    out = capsys.readouterr().out
    for task, state in ((failed, "failed"), (bad, "failed"), (gave_up, "preempted")):
        assert f"{task.task_id}: {state}; retry requested" in out
    assert "retry requested: 3 task(s); 1 left alone" in out
    wait_for_pids([pid for t in (failed, bad, gave_up) for pid in submitted_pids(t)])

    statuses = {s.task_id: s for s in scan(root, BACKENDS)}
    assert {s.state for s in statuses.values()} == {"completed"}
    for task in (failed, bad, gave_up):
        assert (_events(task, "retry_requested"), _events(task, "submit_intent")) == (1, 1)
        assert (task.path / ".claims" / "g-000001").exists()  # through the ordinary claim of resume
        assert (task.logs / "attempt-001.err").exists()  # nothing of the first attempt was deleted
    assert _events(done, "retry_requested") == 0 and statuses[done.task_id].attempts == 1
    # The counts started again after the request: the old failure and preemption are not held against them.
    assert statuses[failed.task_id].failures == 0 and statuses[gave_up.task_id].preemptions == 0
    assert statuses[failed.task_id].attempts == 2

    assert main(["resume", str(root), "--retry-failed", *policy]) == 0  # nothing left to retry
    assert "retry requested: 0 task(s); 4 left alone" in capsys.readouterr().out


def test_users_retrying_at_once_submit_each_task_once(tmp_path: Path) -> None:
    """Four `resume --retry-failed` processes race over the same failed tasks: one submission each."""
    root, fixed = tmp_path / "run", tmp_path / "input.txt"
    tasks = [toy_task(root, f"f{i}", needs=str(fixed)) for i in range(6)]
    assert all(run_task(t.path) == 1 for t in tasks)
    fixed.write_text("fixed")
    cmd = [sys.executable, "-m", "candle_restart.cli", "resume", str(root), "--retry-failed"]
    racers = [
        subprocess.Popen(cmd, cwd=ROOT, env=runner_env(), stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    for proc in racers:
        proc.communicate()
        assert proc.returncode == 0
    for task in tasks:
        assert _events(task, "submit_intent") == 1 and _events(task, "submitted") == 1, task.task_id
    wait_for_pids([pid for t in tasks for pid in submitted_pids(t)])
    assert {s.state for s in scan(root, BACKENDS)} == {"completed"}
