"""Driving a sweep to the end through Parsl: ``candle-restart sweep run CONFIG``.

`run_sweep` expands the YAML into task directories, loads a Parsl
configuration (local HighThroughputExecutor, or Slurm), and repeats
`candle_restart.coordinator.resume` with the Parsl backend until every task
of the sweep is completed or given up, waiting on Parsl futures between
rounds and printing a progress line (done / running / preempted / failed and
an ETA).  A sweep with nothing left to do submits nothing and says so.

The ``demo`` block of the YAML (off unless present) makes the driver send a
real SIGUSR1 to one task's runner mid-training, ``signals`` times, so a
preemption and its resume can be watched.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path
from typing import Any

from candle_restart.coordinator import Policy, TaskStatus, resume, scan
from candle_restart.coordinator.report import table
from candle_restart.sweep.expand import expand
from candle_restart.sweep.schema import Sweep
from candle_restart.task.taskdir import TaskDir

Log = Callable[[str], None]


def policy_of(sweep: Sweep) -> Policy:
    return Policy(
        **{
            k: sweep.restart[k]
            for k in ("max_failures", "max_preemptions", "backoff_seconds")
            if k in sweep.restart
        }
    )


def sweep_statuses(sweep: Sweep, tasks: list[TaskDir], backends: dict[str, Any]) -> list[TaskStatus]:
    return scan(sweep.run_root, backends, only={t.task_id for t in tasks})


def progress_counts(statuses: list[TaskStatus], gave_up: int) -> str:
    counts = Counter(s.state for s in statuses)
    resumed = sum(s.preemptions for s in statuses)
    return (
        f"{counts['completed']}/{len(statuses)} done, {counts['running'] + counts['queued']} running or queued, "
        f"{counts['preempted']} preempted ({resumed} preemptions so far), {counts['failed']} failed, "
        f"{gave_up} given up"
    )


def eta(statuses: list[TaskStatus], started: float, gave_up: int) -> str:
    done = sum(s.state == "completed" for s in statuses)
    remaining = len(statuses) - done - gave_up
    return f"{(time.monotonic() - started) / done * remaining:.0f} s" if done and remaining else "-"


class _DemoPreemption:
    """Sends SIGUSR1 to one task's runner after it wrote ``after_checkpoints`` more checkpoints,
    ``signals`` times (one per attempt)."""

    def __init__(self, task: TaskDir, after_checkpoints: int, signals: int, log: Log) -> None:
        self.task, self.after, self.left, self.log = task, after_checkpoints, signals, log
        self.signalled: set[int] = set()

    def poll(self) -> None:
        if self.left <= 0:
            return
        state, _ = self.task.read_state()
        if not state or state.get("status") != "running" or state.get("host") != socket.gethostname():
            return
        pid = int(state.get("pid", 0))
        log = self.task.ckpts / "ckpt.log"
        lines = log.read_text(errors="replace").count("model wrote:") if log.exists() else 0
        if pid in self.signalled or lines < self.after * (len(self.signalled) + 1):
            return
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            return
        self.signalled.add(pid)
        self.left -= 1
        self.log(f"demo: sent SIGUSR1 to {self.task.task_id} (pid {pid}) mid-training")


def run_sweep(sweep: Sweep, *, log: Log = print, poll_seconds: float = 2.0) -> int:
    """Run ``sweep`` to the end; return 0 when every task completed, 1 otherwise."""
    import parsl

    from candle_restart.parsl import ParslBackend
    from candle_restart.parsl.configs import parsl_config

    expansion = expand(sweep)
    log(f"sweep {sweep.name}: {len(expansion.tasks)} tasks in {sweep.run_root} ({expansion.created} new)")
    policy = policy_of(sweep)
    backend = ParslBackend()
    before = sweep_statuses(sweep, expansion.tasks, {})
    if all(s.state == "completed" for s in before):
        log(f"nothing to do: all {len(before)} tasks are completed; nothing submitted")
        return 0
    run_dir = sweep.run_root / ".parsl"
    config = parsl_config(sweep.executor, run_dir, policy)
    demo = None
    if sweep.demo is not None:
        target = expansion.tasks[min(sweep.demo.get("preempt_task", 0), len(expansion.tasks) - 1)]
        demo = _DemoPreemption(
            target, sweep.demo.get("after_checkpoints", 1), sweep.demo.get("signals", 1), log
        )
    ids = {t.task_id for t in expansion.tasks}
    started = time.monotonic()
    dfk = parsl.load(config)
    try:
        last_line = ""
        while True:
            outcomes = resume(sweep.run_root, backend, policy, log=log, only=ids)
            gave_up = sum(o.decision.action in ("give_up", "report") for o in outcomes)
            line = progress_counts([o.status for o in outcomes], gave_up)
            if line != last_line:  # print when something changed, not every poll
                log(f"progress: {line}; ETA {eta([o.status for o in outcomes], started, gave_up)}")
                last_line = line
            if all(o.final for o in outcomes):
                break
            pending = backend.pending()
            timeout = 0.5 if demo and demo.left else poll_seconds
            if pending:
                wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            else:
                time.sleep(timeout)  # only waiting out a backoff: nothing to wait on
            if demo:
                demo.poll()
    finally:
        dfk.cleanup()
        parsl.clear()
    statuses = sweep_statuses(sweep, expansion.tasks, {})
    for s in statuses:
        if s.preemptions:
            log(f"{s.task_id}: preempted {s.preemptions} time(s); resumed from ckpts/last each time")
    log(table(statuses))
    return 0 if all(s.state == "completed" for s in statuses) else 1


def sweep_status(sweep: Sweep) -> str:
    """The status table of the sweep's tasks (those that exist; nothing is created)."""
    from candle_restart.sweep.expand import parameter_sets
    from candle_restart.task.taskdir import make_task_id

    tasks = [TaskDir(Path(sweep.run_root) / make_task_id(sweep.name, p)) for p in parameter_sets(sweep)]
    present = [t for t in tasks if t.task_file.exists()]
    if not sweep.run_root.is_dir():
        return f"sweep {sweep.name}: {sweep.run_root} does not exist yet (0 of {len(tasks)} tasks created)"
    header = f"sweep {sweep.name}: {len(present)} of {len(tasks)} tasks created in {sweep.run_root}"
    return header + "\n" + table(sweep_statuses(sweep, present, {}))
