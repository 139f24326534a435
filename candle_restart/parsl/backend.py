"""The Parsl backend of the coordinator, and the retry handler that asks the coordinator.

`ParslBackend` submits `run_task_app` futures to the loaded Parsl DataFlowKernel.
A submission records the driving process (host, pid, start time): from that
process the future tells liveness; from any other, a live driver means
``unknown`` (treated as alive: never resubmitted) and a dead one ``ended``.

`make_retry_handler` gives Parsl a cost per failure: exit 75 (stopped on a
signal, resumable) costs nothing until the task's preemption cap; exit 2 (bad
input) exhausts the budget at once; anything else costs one failure.  While its ``stop``
event is set (``sweep run`` was interrupted: `candle_restart.sweep.run.SweepRun.stopping`)
nothing is rerun.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future

from parsl.dataflow.taskrecord import TaskRecord

from candle_restart.coordinator.backend import Liveness, Submission
from candle_restart.coordinator.policy import Policy, decide
from candle_restart.coordinator.states import classify
from candle_restart.runtime.preempt import EXIT_BAD_INPUT, EXIT_RESUME
from candle_restart.task.process import pid_alive, process_start
from candle_restart.task.taskdir import TaskDir


class ParslBackend:
    """Runs each submission as a `run_task_app` in the currently loaded Parsl configuration."""

    name = "parsl"
    # A Parsl app journals its start once a worker picks it up, which may take a while on a busy
    # executor; an intent older than this with no outcome is taken as lost.
    reconcile_grace = 60.0

    def __init__(self) -> None:
        self.futures: dict[tuple[str, int], Future[object]] = {}

    def submit(self, task: TaskDir, generation: int) -> Submission:
        from candle_restart.parsl.apps import run_task_app

        task.logs.mkdir(parents=True, exist_ok=True)
        future = run_task_app(
            str(task.path),
            generation,
            sys.executable,
            stdout=str(task.logs / f"parsl-{generation:03d}.out"),
            stderr=str(task.logs / f"parsl-{generation:03d}.err"),
        )
        self.futures[(task.task_id, generation)] = future
        data = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
            "parsl_task": getattr(future, "tid", None),
        }
        return Submission(self.name, generation, data)

    def liveness(self, submission: Submission) -> Liveness:
        mine = submission.data.get("pid") == os.getpid()
        for (_task_id, generation), future in self.futures.items():
            same = generation == submission.generation and getattr(
                future, "tid", None
            ) == submission.data.get("parsl_task")
            if mine and same:
                return "ended" if future.done() else "running"
        driver = pid_alive(
            str(submission.data.get("host")),
            int(submission.data.get("pid", 0)),
            submission.data.get("pid_start"),
        )
        return "ended" if driver == "ended" else "unknown"

    def pending(self) -> list[Future[object]]:
        return [f for f in self.futures.values() if not f.done()]


def _task_dir(task_record: TaskRecord) -> str | None:
    args = task_record.get("args") or ()
    if args:
        return str(args[0])
    task_dir = task_record.get("kwargs", {}).get("task_dir")
    return None if task_dir is None else str(task_dir)


def make_retry_handler(
    policy: Policy, stop: threading.Event | None = None
) -> Callable[[Exception, TaskRecord], float]:
    """A Parsl ``retry_handler`` implementing the coordinator's policy (see the module docstring);
    it says "never" while ``stop`` is set (None: never set)."""
    never = float(policy.max_failures + 1)
    stopping = stop if stop is not None else threading.Event()

    def retry_handler(exception: Exception, task_record: TaskRecord) -> float:
        code = getattr(exception, "exitcode", None)
        if code == EXIT_BAD_INPUT or stopping.is_set():
            return never
        if code == EXIT_RESUME:
            path = _task_dir(task_record)
            if path is None:
                return 1.0
            status = classify(TaskDir(path), {})  # the cause's budget, and the no-progress breaker
            stop = status.state == "pruned" or decide(status, policy).action == "give_up"
            return never if stop else 0.0
        return 1.0

    return retry_handler
