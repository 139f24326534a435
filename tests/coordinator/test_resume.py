"""resume with real processes: completion, an 8-way race, dead lock holders, reconciling lost outcomes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from candle_restart.coordinator import LocalBackend, Policy, resume, scan
from candle_restart.coordinator.backend import Backend
from candle_restart.records.jsontypes import JsonObject
from candle_restart.task import TaskDir
from tests.helpers import ROOT, preempted_task, runner_env, submitted_pids, toy_task, wait_for_pids

BACKENDS: dict[str, Backend] = {"local": LocalBackend()}


def test_resume_brings_every_preempted_task_to_completion(tmp_path: Path) -> None:
    root = tmp_path / "run"
    for i in range(4):
        preempted_task(root, f"p{i}", epochs=4)
    toy_task(root, "fresh", epochs=4)
    backend = LocalBackend()
    outcomes = resume(root, backend)
    assert sorted(o.decision.action for o in outcomes) == ["submit"] * 5
    backend.wait_all()
    statuses = scan(root, BACKENDS)
    assert [s.state for s in statuses] == ["completed"] * 5
    assert all(s.epoch == 4 for s in statuses)
    preempted = [s for s in statuses if s.task_id.startswith("p")]
    assert all(s.attempts == 2 and s.preemptions == 1 and s.generation == 1 for s in preempted)
    again = resume(root, backend)
    assert all(o.decision.action == "none" and o.final for o in again)


def test_failed_task_is_retried_within_its_budget_then_given_up(tmp_path: Path) -> None:
    root = tmp_path / "run"
    toy_task(root, "f", fail_at=1)
    backend = LocalBackend()
    policy = Policy(max_failures=2, backoff_seconds=0)
    for _ in range(2):
        resume(root, backend, policy)
        backend.wait_all()
    [outcome] = resume(root, backend, policy)
    assert outcome.decision.action == "give_up" and outcome.status.failures == 2


def test_eight_coordinators_racing_submit_each_task_exactly_once(tmp_path: Path) -> None:
    root = tmp_path / "run"
    tasks = [preempted_task(root, f"t{i:03d}", epochs=2) for i in range(64)]
    cmd = [sys.executable, "-m", "candle_restart.cli", "resume", str(root)]
    coordinators = [
        subprocess.Popen(cmd, cwd=ROOT, env=runner_env(), stdout=subprocess.PIPE, text=True) for _ in range(8)
    ]
    for proc in coordinators:
        proc.communicate()
        assert proc.returncode == 0
    intents, submitted = Counter[str](), Counter[str]()
    for task in tasks:
        for event in task.events():
            intents[task.task_id] += event.kind == "submit_intent"
            submitted[task.task_id] += event.kind == "submitted"
    assert set(intents.values()) == {1} and set(submitted.values()) == {1}
    wait_for_pids([pid for task in tasks for pid in submitted_pids(task)])
    assert Counter(s.state for s in scan(root, BACKENDS)) == {"completed": 64}
    print(f"race: 8 coordinators, {len(tasks)} tasks, {sum(intents.values())} submissions")


def _hold_lock_and_die(task: TaskDir, tmp_path: Path, lease: float, other_host: bool) -> None:
    fifo = tmp_path / "held"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "tests.programs.lock_holder", str(task.path), str(lease), str(fifo)]
    if other_host:
        cmd = ["unshare", "--uts", "sh", "-c", 'hostname another-node && exec "$@"', "sh", *cmd]
    holder = subprocess.Popen(cmd, cwd=ROOT, env=runner_env())
    with open(fifo) as f:
        assert f.readline() == "held\n"
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("other_host", [False, True])
def test_lock_of_a_killed_coordinator_is_broken_after_its_lease(tmp_path: Path, other_host: bool) -> None:
    if other_host and shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: cannot pose as another host")
    root = tmp_path / "run"
    task = preempted_task(root, "locked")
    _hold_lock_and_die(task, tmp_path, lease=1.0, other_host=other_host)
    assert "another-node" in task.lock_file.read_text() if other_host else True
    backend, lines = LocalBackend(), list[str]()
    [outcome] = resume(root, backend, lease_seconds=1.0, log=lines.append)
    backend.wait_all()
    assert outcome.decision.action == "submit", outcome.decision
    assert any("breaking the lock of a dead coordinator" in line for line in lines)
    assert scan(root, BACKENDS)[0].state == "completed"


def _old(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()


def test_intent_without_outcome_is_reconciled_not_duplicated(tmp_path: Path) -> None:
    root = tmp_path / "run"
    started = preempted_task(root, "started")
    # A coordinator of this host wrote the intent, the runner started (its journal says so), then
    # the coordinator died.  (Intents of other hosts: tests/coordinator/test_clock_skew.py.)
    here: JsonObject = {"host": socket.gethostname(), "pid": 1}
    started.append_journal(
        {"event": "submit_intent", "generation": 1, "backend": "local", "time": _old(120), "by": here}
    )
    started.append_journal(
        {"event": "start", "attempt": 2, "generation": 1, "host": "another-node", "pid": 1}
    )
    started.write_state({"status": "running", "generation": 1, "host": "another-node", "pid": 1})
    never = preempted_task(root, "never")
    never.append_journal(
        {"event": "submit_intent", "generation": 1, "backend": "local", "time": _old(120), "by": here}
    )
    recent = preempted_task(root, "recent")
    recent.append_journal({"event": "submit_intent", "generation": 1, "backend": "local", "by": here})
    backend = LocalBackend()
    outcomes = {o.status.task_id.split("-")[0]: o for o in resume(root, backend)}
    backend.wait_all()
    events = {
        name: [e.kind for e in t.events() if "submit" in e.kind]
        for name, t in (("started", started), ("never", never), ("recent", recent))
    }
    assert events["started"] == ["submit_intent", "submitted"]
    assert events["never"] == ["submit_intent", "submit_abandoned", "submit_intent", "submitted"]
    assert events["recent"] == ["submit_intent"] and outcomes["recent"].decision.action == "none"
    assert outcomes["started"].status.state == "running"  # on another host: left alone


def test_runner_of_a_superseded_generation_stands_down(tmp_path: Path) -> None:
    task = preempted_task(tmp_path / "run", "stale")
    task.append_journal({"event": "submit_intent", "generation": 2, "backend": "local"})
    before = task.state_file.read_bytes()
    env = {**runner_env(), "CANDLE_RESTART_GENERATION": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "candle_restart.task", str(task.path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "superseded" in proc.stderr
    assert task.state_file.read_bytes() == before
    assert task.events()[-1].kind == "stale_start"


def test_a_runner_that_cannot_start_counts_as_a_failure_and_stops(tmp_path: Path) -> None:
    root = tmp_path / "run"
    toy_task(root, "nostart")
    backend = LocalBackend(python="/bin/false")  # every submission dies before the runner starts
    policy = Policy(max_failures=2, backoff_seconds=0)
    actions = []
    for _ in range(4):
        [outcome] = resume(root, backend, policy)
        actions.append(outcome.decision.action)
        backend.wait_all()
    assert actions == ["submit", "submit", "give_up", "give_up"]


def test_an_empty_lock_marker_left_by_a_killed_coordinator_does_not_block_forever(tmp_path: Path) -> None:
    """Found by `make torture`: a SIGKILL between creating the marker and writing its record."""
    root = tmp_path / "run"
    task = preempted_task(root, "empty")
    task.lock_file.write_bytes(b"")
    os.utime(task.lock_file, (0, 0))  # long ago
    backend, lines = LocalBackend(), list[str]()
    [outcome] = resume(root, backend, lease_seconds=1.0, log=lines.append)
    backend.wait_all()
    assert outcome.decision.action == "submit"
    assert any("removed an empty lock marker" in line for line in lines)
    fresh = preempted_task(root, "fresh")
    fresh.lock_file.write_bytes(b"")  # just created: maybe a holder about to write its record
    [busy] = [o for o in resume(root, backend, lease_seconds=1.0) if o.status.task_id.startswith("fresh")]
    backend.wait_all()
    assert busy.decision.action == "none" and "locked by another coordinator" in busy.decision.reason
