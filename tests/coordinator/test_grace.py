"""The first-sight record of `candle_restart.coordinator.grace`: a wait measured on this host's clock."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from candle_restart.coordinator.grace import seen_for
from tests.helpers import toy_task


def test_a_sighting_is_kept_on_this_hosts_clock_and_a_garbage_one_replaced(tmp_path: Path) -> None:
    task = toy_task(tmp_path / "run", "seen")
    assert seen_for(task, "submission 1 without outcome", now=1000.0) == 0.0
    assert seen_for(task, "submission 1 without outcome", now=1060.0) == 60.0  # a later pass
    [path] = (task.path / ".seen").iterdir()
    path.write_text('{"host": [1], "what": "x", "since": 1e309}')  # garbage: not a sighting
    assert seen_for(task, "submission 2 without outcome", now=2000.0) == 0.0  # something new: first sight
    assert json.loads(path.read_text()) == {"host": socket.gethostname(), "what": "submission 2 without outcome", "since": 2000.0}


def test_a_submission_that_ended_before_its_runner_started_is_retried_after_the_backoff(tmp_path: Path) -> None:
    """A driver killed after submitting, before the runner started: the submission ended with no exit
    recorded. Its failure is timed from this host's first sight of it, so the backoff ends (it used to
    wait forever: no exit time, so no age)."""
    import subprocess
    import sys
    import time

    from candle_restart.coordinator import Policy
    from candle_restart.coordinator.grace import observe
    from candle_restart.coordinator.policy import decide
    from candle_restart.coordinator.states import classify
    from candle_restart.parsl.backend import ParslBackend

    task = toy_task(tmp_path / "run", "lost")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # the dead driver
    host, stamp = socket.gethostname(), "2026-01-01T00:00:00.000+00:00"
    submission = {"backend": "parsl", "generation": 1, "host": host, "pid": gone.pid, "pid_start": 1, "parsl_task": 4}
    lines = [
        {"time": stamp, "event": "submit_intent", "generation": 1, "backend": "parsl", "by": {"host": host, "pid": gone.pid}},
        {"time": stamp, "event": "submitted", "generation": 1, "submission": submission},
    ]
    task.journal_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (task.path / "state.json").write_text(json.dumps({"status": "queued", "generation": 1}))
    policy = Policy(backoff_seconds=0.3)
    decisions = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = classify(task, {"parsl": ParslBackend()})
        assert status.state == "failed" and status.last_exit_time is None, status
        decisions.append(decide(observe(task, status), policy).action)
        if decisions[-1] == "submit":
            break
        time.sleep(0.1)
    assert decisions[0] == "wait" and decisions[-1] == "submit", decisions
