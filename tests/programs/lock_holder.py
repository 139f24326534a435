"""Test helper: take the lock of a task, tell the test through a FIFO, then wait to be killed.

Usage: python -m tests.programs.lock_holder TASK_DIR LEASE_SECONDS FIFO
"""

from __future__ import annotations

import signal
import sys

from candle_restart.coordinator.lock import task_lock
from candle_restart.task import TaskDir

if __name__ == "__main__":
    task, lease, fifo = TaskDir(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    with task_lock(task, lease_seconds=lease):
        with open(fifo, "w") as f:
            f.write("held\n")
        while True:
            signal.pause()
