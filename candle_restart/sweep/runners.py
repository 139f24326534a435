"""A sweep's runners on this host, as its driver (`candle_restart.sweep.run`) and search see them.

`local_runner` finds a task's live runner on this host (from ``state.json``, the pid and its
start time); `stop_tasks` asks every such runner to checkpoint and exit 75 with its first
``ckpt_signals`` signal (`checkpoint_signal`) and waits for them (Ctrl-C of ``sweep run``);
`DemoPreemption` sends the YAML ``demo`` block's SIGUSR1s.  `Interrupt` counts SIGINTs instead of
raising KeyboardInterrupt at an arbitrary point.  Signals are sent with ``os.kill``; nothing
here starts a process.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from candle_restart.ckpt import parse_params
from candle_restart.ckpt.envparams import with_environment
from candle_restart.errors import CkptError
from candle_restart.records.epochs import count_events, events_path
from candle_restart.task.launch import task_params
from candle_restart.task.process import pid_alive
from candle_restart.task.taskdir import TaskDir

Log = Callable[[str], None]


class Interrupt:
    """Counts SIGINTs (Ctrl-C): install an instance as the handler; ``count`` says how many came."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1


def checkpoint_signal(task: TaskDir) -> signal.Signals:
    """The first of the task's ``ckpt_signals`` (what its runner armed); USR1 when it cannot be read."""
    try:
        settings = parse_params(with_environment(task_params(task.load_spec(), task)))
        return signal.Signals[f"SIG{settings.signals[0]}"]
    except (CkptError, KeyError, IndexError):
        return signal.SIGUSR1


def local_runner(task: TaskDir) -> tuple[int, bool] | None:
    """(pid, armed) of the task's runner when it runs on this host, else None; ``armed`` once it
    has had a second to arm its signals."""
    state, _ = task.load_state()
    if state is None or state.status != "running" or state.pid is None:
        return None
    if pid_alive(str(state.host), state.pid, state.pid_start) != "running":
        return None
    try:  # arming takes milliseconds after state.json says running; a signal before it would kill
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(str(state.started))).total_seconds()
    except (TypeError, ValueError):
        age = float("inf")
    return state.pid, age >= 1.0


def stop_tasks(tasks: list[TaskDir], interrupt: Interrupt, log: Log, wait_seconds: float) -> set[str]:
    """Ask every runner of ``tasks`` on this host to checkpoint and exit 75; wait for them up to
    ``wait_seconds``, or until another SIGINT counts on ``interrupt``.

    Runners that start meanwhile (queued tasks) are asked too.  Returns the ids of the tasks asked.
    """
    asked: dict[str, int] = {}
    deadline = time.monotonic() + wait_seconds
    waited = interrupt.count
    while True:
        running = {t.task_id: (t, found) for t in tasks if (found := local_runner(t)) is not None}
        for task_id, (task, (pid, armed)) in running.items():
            if armed and asked.get(task_id) != pid:
                sig = checkpoint_signal(task)
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    continue
                asked[task_id] = pid
                log(f"{task_id}: sent {sig.name} to its runner (pid {pid}): checkpoint and stop")
        if not running or time.monotonic() > deadline or interrupt.count > waited:
            return set(asked)
        time.sleep(0.2)


def _commits(ckpts: Path) -> int:
    """Checkpoints committed in ``ckpts``: its commit events, or, for a writer that keeps no
    ``events.jsonl`` (CANDLE's own checkpoint code run as a ``command``), the ``model wrote:``
    lines of its ``ckpt.log`` (the old-format fallback, the only place the log is counted)."""
    if events_path(ckpts).exists():
        return count_events(ckpts, "commit")
    log = ckpts / "ckpt.log"
    try:
        return log.read_text(errors="replace").count("model wrote:")
    except OSError:
        return 0


class DemoPreemption:
    """Sends SIGUSR1 to one task's runner after it wrote ``after_checkpoints`` more checkpoints,
    ``signals`` times (one per attempt)."""

    def __init__(self, task: TaskDir, after_checkpoints: int, signals: int, log: Log) -> None:
        self.task, self.after, self.left, self.log = task, after_checkpoints, signals, log
        self.signalled: set[int] = set()

    def poll(self) -> None:
        if self.left <= 0:
            return
        state, _ = self.task.load_state()
        if state is None or state.status != "running" or state.host != socket.gethostname():
            return
        pid = state.pid or 0
        commits = _commits(self.task.ckpts)
        if pid in self.signalled or commits < self.after * (len(self.signalled) + 1):
            return
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            return
        self.signalled.add(pid)
        self.left -= 1
        self.log(f"demo: sent SIGUSR1 to {self.task.task_id} (pid {pid}) mid-training")
