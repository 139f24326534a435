"""The Parsl retry handler asks the coordinator: preemptions are free until the cap, bad input never reruns."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from parsl.app.errors import BashExitFailure
from parsl.dataflow.taskrecord import TaskRecord

from candle_restart.coordinator import Policy
from candle_restart.parsl import make_retry_handler
from tests.helpers import preempted_task


def test_costs_follow_the_exit_code_and_the_preemption_cap(tmp_path: Path) -> None:
    task = preempted_task(tmp_path / "run", "p")
    record = cast("TaskRecord", {"args": (str(task.path), 1, "python"), "kwargs": {}})  # the fields read
    handler = make_retry_handler(Policy(max_failures=2, max_preemptions=2))
    assert handler(BashExitFailure("run_task_app", 75), record) == 0.0
    assert handler(BashExitFailure("run_task_app", 1), record) == 1.0
    assert handler(BashExitFailure("run_task_app", 2), record) == 3.0  # beyond any budget
    capped = make_retry_handler(Policy(max_failures=2, max_preemptions=1))
    assert capped(BashExitFailure("run_task_app", 75), record) == 3.0
