"""A process that armed the preemption signals is not killed by one while it exits 75."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.helpers import runner_env

# Arms USR1 as the callback does, waits for the test, then exits 75 as a preempted training does.
SCRIPT = """
import signal, sys
from candle_restart.runtime.preempt import Preempted, arm
arm([signal.SIGUSR1])
print("armed", flush=True)
sys.stdin.readline()
raise Preempted("a checkpoint was committed")
"""


def test_signals_sent_all_through_the_exit_leave_exit_75() -> None:
    """USR1 in a loop from the moment it starts to exit until it is gone: CPython's finalization puts
    SIG_DFL back in place of Python handlers, which without the exit hook killed it every time."""
    codes = []
    for _trial in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            env=runner_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline() == "armed\n", proc.stderr.read() if proc.stderr else ""
        proc.stdin.write("\n")
        proc.stdin.flush()
        while proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGUSR1)
            except ProcessLookupError:
                break
        proc.communicate()
        codes.append(proc.returncode)
    assert codes == [75] * 5
