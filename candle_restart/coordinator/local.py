"""The local backend: each submission is a detached child process running the task runner.

Children get their own session (a signal to the coordinator's terminal does
not reach them) and survive the coordinator.  A submission records host, pid
and the process's start time (from ``/proc``), so liveness survives pid
reuse; a zombie counts as ended.  From another host liveness is ``unknown``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from candle_restart.coordinator.backend import GENERATION_ENV, Liveness, Submission
from candle_restart.task.process import pid_alive, process_start
from candle_restart.task.taskdir import TaskDir


class LocalBackend:
    """Runs ``python -m candle_restart.task TASK_DIR`` detached on this host."""

    name = "local"
    # A local submission's runner journals its start within a second; an intent without an
    # outcome older than this was never carried out (its coordinator died first).
    reconcile_grace = 10.0

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._children: list[subprocess.Popen[bytes]] = []

    def submit(self, task: TaskDir, generation: int) -> Submission:
        self.reap()
        task.logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, GENERATION_ENV: str(generation)}
        with open(task.logs / f"runner-{generation:03d}.log", "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "candle_restart.task", str(task.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        self._children.append(proc)
        data = {"host": socket.gethostname(), "pid": proc.pid, "start": process_start(proc.pid)}
        return Submission(self.name, generation, data)

    def liveness(self, submission: Submission) -> Liveness:
        data = submission.data
        return pid_alive(str(data.get("host")), int(data.get("pid", 0)), data.get("start"))

    def wait_all(self) -> None:
        """Wait for every child this backend started in this process (tests, ``resume --wait``)."""
        for proc in self._children:
            proc.wait()
        self._children = []

    def reap(self) -> None:
        """Collect exited children of this process (so they do not linger as zombies)."""
        self._children = [p for p in self._children if p.poll() is None]
