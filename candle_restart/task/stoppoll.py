"""A durable stop request the runner polls: a search's ``pruned.json``, seen on any host.

A search that prunes a task writes ``<task>/pruned.json`` first (`candle_restart.records.search`)
and signals the task's runner only when it runs on the driver's own host.  A runner elsewhere
(another node of the allocation, a Slurm job) sees the file instead: `StopPoll`, a thread of
the runner, checks for it every `POLL_SECONDS` while the training runs, and when it appears sends
the runner's own process its first armed preemption signal, once.  The runner serves it as any
checkpoint signal: an entry's callback commits and stops, a command's process group gets the
signal forwarded; the attempt ends with exit 75, and the task is ``pruned`` from then on
(terminal: the coordinator reads the same file).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from candle_restart.records.search import PRUNED_FILE
from candle_restart.runtime.preempt import armed_signals

POLL_SECONDS = 1.0


class StopPoll(threading.Thread):
    """Polls ``<task>/pruned.json`` while the training runs (a daemon thread; `done` ends it)."""

    def __init__(self, task_path: Path, say: Callable[[str], None], seconds: float = POLL_SECONDS) -> None:
        super().__init__(name="candle-restart-stop-poll", daemon=True)
        self.path = Path(task_path) / PRUNED_FILE
        self.say, self.seconds = say, seconds
        self.asked = False
        self._done = threading.Event()

    def done(self) -> None:
        """Stop polling and wait for the thread."""
        self._done.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        while not self._done.wait(self.seconds):
            if not self.path.exists():
                continue
            signals = armed_signals()
            if not signals:  # nothing would serve a signal: never send one that kills
                continue
            self.say(f"{self.path} asks this task to stop (pruned by its search); checkpointing and stopping")
            with contextlib.suppress(ProcessLookupError):
                os.kill(os.getpid(), signal.Signals(signals[0]))
            self.asked = True
            return
