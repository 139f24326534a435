"""Clocks need not agree (issue 27, item 2): two coordinators and a runner whose clocks are 10
minutes apart.

A real clock cannot be skewed for one process here (time namespaces leave the wall clock
alone), and it need not be: the only thing that crosses hosts is the lines each writes.  So the
other coordinator's lines and the runner's are written with their clocks' times, 10 minutes ahead
or behind this one's: the runner's by a real runner whose lines are then restamped, the dead
coordinator's intent by the records' own writer, as it would have written it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from candle_restart.coordinator import Backend, LocalBackend, Policy, resume, scan
from candle_restart.coordinator.lock import claim_generation
from candle_restart.coordinator.retry import request_retry
from candle_restart.records.journal import SUBMIT_INTENT, JournalEvent
from candle_restart.records.jsontypes import JsonObject
from candle_restart.task import TaskDir
from tests.helpers import preempted_task, toy_task

GRACE = 2.0  # seconds: Policy.reconcile_grace, on this host's clock
BACKENDS: dict[str, Backend] = {"local": LocalBackend()}


def restamp(path: Path, seconds: float, from_line: int = 0) -> int:
    """Shift the ``time`` of every line of ``path`` from ``from_line`` on by ``seconds``, as a
    runner on another host (node-r) whose clock is that far off would have stamped them; the
    number of lines."""
    lines = path.read_text().splitlines()
    for i in range(from_line, len(lines)):
        record = json.loads(lines[i])
        stamp = datetime.fromisoformat(record["time"]) + timedelta(seconds=seconds)
        where = {"host": "node-r"} if "host" in record else {}
        lines[i] = json.dumps({**record, "time": stamp.isoformat(timespec="milliseconds"), **where})
    path.write_text("".join(line + "\n" for line in lines))
    return len(lines)


def submits(task: TaskDir) -> list[str]:
    return [f"{e.kind}:{e.generation}" for e in task.events() if e.kind.startswith("submit")]


def wait_until(deadline: float) -> None:
    """Let this host's clock reach ``deadline`` (time.monotonic()); the grace is time passing."""
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))


@pytest.mark.parametrize("coordinator_skew, runner_skew", [(600, -600), (-600, 600)])
def test_a_lost_intent_of_a_skewed_coordinator_is_resubmitted_within_one_grace_period(
    tmp_path: Path, coordinator_skew: int, runner_skew: int
) -> None:
    root = tmp_path / "run"
    task = preempted_task(root, "skew")  # a real runner's lines ...
    restamp(task.runs_file, runner_skew)  # ... by a clock 10 minutes off
    # Coordinator A on node-a (its clock 10 minutes off) claimed generation 1, recorded the intent, died.
    claim_generation(task, 1)
    stamp = datetime.now(timezone.utc) + timedelta(seconds=coordinator_skew)
    by: JsonObject = {"host": "node-a", "pid": 4242}
    task.append_journal(JournalEvent(SUBMIT_INTENT, generation=1, time=stamp.isoformat(), extras={"backend": "local", "by": by}))
    backend, policy = LocalBackend(), Policy(reconcile_grace=GRACE)

    [first] = resume(root, backend, policy)
    first_sight = time.monotonic()  # this host saw the intent during that pass, at the latest now
    assert first.decision.action == "none" and "may be in flight" in first.decision.reason, first.decision
    [again] = resume(root, backend, policy)
    assert again.decision.action == "none", again.decision  # within the grace: maybe in flight
    assert submits(task) == ["submit_intent:1"]

    wait_until(first_sight + GRACE)  # one grace period on this host's clock
    [after] = resume(root, backend, policy)
    backend.wait_all()
    assert after.acted and after.decision.action == "submit", after.decision
    assert submits(task) == ["submit_intent:1", "submit_abandoned:1", "submit_intent:2", "submitted:2"]
    for _ in range(5):  # later passes leave it alone: nothing abandoned again
        resume(root, backend, policy)
        backend.wait_all()
    assert submits(task) == ["submit_intent:1", "submit_abandoned:1", "submit_intent:2", "submitted:2"]
    assert scan(root, BACKENDS)[0].state == "completed"
    assert [p.name for p in (task.path / ".seen").iterdir()] == [socket.gethostname()]  # for later processes


def test_retry_requested_from_a_host_behind_the_runners_restarts_their_count(tmp_path: Path) -> None:
    """The runners' clocks are 10 minutes ahead of the coordinator that asks for a retry: the
    retry still comes after the failures it answers, so the task gets its whole budget again."""
    root = tmp_path / "run"
    task = toy_task(root, "retry", needs=str(tmp_path / "input-that-is-missing"))
    backend, policy = LocalBackend(), Policy(max_failures=2, backoff_seconds=0)
    skewed = 0

    def one_pass() -> str:
        nonlocal skewed
        [outcome] = resume(root, backend, policy)
        backend.wait_all()
        if task.runs_file.exists():
            skewed = restamp(task.runs_file, 600, skewed)  # the runners' clock: 10 minutes ahead
        return outcome.decision.action

    assert [one_pass() for _ in range(3)] == ["submit", "submit", "give_up"]
    [answer] = request_retry(root, BACKENDS, policy)  # this host: behind the runners
    assert answer.requested, answer.line
    # The retry gets max_failures attempts again: submitted, failed once, submitted, failed twice.
    assert [one_pass() for _ in range(3)] == ["submit", "submit", "give_up"]
    status = scan(root, BACKENDS)[0]
    assert status.failures == 2 and status.attempts == 4, status


@pytest.mark.parametrize("runner_skew", [600, -600])
def test_a_failure_on_a_skewed_runner_is_retried_one_backoff_later(tmp_path: Path, runner_skew: int) -> None:
    root = tmp_path / "run"
    task = toy_task(root, "backoff", needs=str(tmp_path / "input-that-is-missing"))
    backend, policy = LocalBackend(), Policy(max_failures=3, backoff_seconds=GRACE)
    [first] = resume(root, backend, policy)
    backend.wait_all()
    restamp(task.runs_file, runner_skew)  # the failure as a runner 10 minutes off recorded it
    [waiting] = resume(root, backend, policy)
    first_sight = time.monotonic()
    assert first.acted and waiting.decision.action == "wait", waiting.decision
    wait_until(first_sight + GRACE)  # one backoff on this host's clock
    [retried] = resume(root, backend, policy)
    backend.wait_all()
    assert retried.acted and retried.decision.action == "submit", retried.decision


def test_an_intent_of_this_host_is_timed_from_its_own_stamp(tmp_path: Path) -> None:
    """This host's own stamp is on this clock: a one-shot ``resume`` (cron) reconciles an intent
    its host recorded long ago at once, with no sighting to wait for."""
    root = tmp_path / "run"
    task = preempted_task(root, "own")
    claim_generation(task, 1)
    long_ago = (datetime.now(timezone.utc) - timedelta(seconds=120)).isoformat()
    by: JsonObject = {"host": socket.gethostname(), "pid": os.getpid()}
    task.append_journal(JournalEvent(SUBMIT_INTENT, generation=1, time=long_ago, extras={"backend": "local", "by": by}))
    backend = LocalBackend()
    [outcome] = resume(root, backend, Policy(reconcile_grace=60))
    backend.wait_all()
    assert outcome.acted, outcome.decision
    assert submits(task) == ["submit_intent:1", "submit_abandoned:1", "submit_intent:2", "submitted:2"]

