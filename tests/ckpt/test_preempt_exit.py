"""A process that armed the preemption signals is not killed by one while it exits 75, and the
children it forks do not inherit its handlers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from multiprocessing.connection import Connection

from candle_restart.runtime.preempt import REQUEST, PreemptionRequest, arm, armed_signals
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


def _child(report: Connection) -> None:
    """A forked worker: says what it inherited, then answers each message until it is ended."""
    dispositions = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1))
    report.send((armed_signals(), REQUEST.requested, dispositions))
    while True:  # as a pool worker waits for its next task
        report.send(report.recv())


def test_a_forked_child_ends_on_the_sigterm_its_parent_sends(preemption: PreemptionRequest) -> None:
    """A data loader's worker pool (``PyDataset(use_multiprocessing=True)``) is forked from the
    armed training and ended by SIGTERM (``Pool.terminate``): with the record-only handler
    inherited, the worker ignored it and the training never exited.  The notice signal the runner
    forwards to the whole process group (USR1) leaves the worker serving its batches."""
    disarm = arm([signal.SIGTERM, signal.SIGUSR1])
    preemption.request(signal.SIGUSR1)  # a request pending in the parent is not the child's
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_child, args=(theirs,))
    try:
        child.start()
        assert ours.poll(60), "the child did not start"
        armed, requested, (term, usr1) = ours.recv()
        assert (armed, requested, term) == ([], False, signal.SIG_DFL)
        assert callable(usr1)  # caught and dropped; not SIG_IGN, which an exec would keep
        assert child.pid is not None
        os.kill(child.pid, signal.SIGUSR1)  # discarded when sent: a worker it killed would not answer
        ours.send("the next batch")
        assert ours.poll(60) and ours.recv() == "the next batch"
        child.terminate()
        child.join(30)
        assert child.exitcode == -signal.SIGTERM, child.exitcode
        assert armed_signals() == [signal.SIGTERM, signal.SIGUSR1] and preemption.requested  # the parent's stay
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        disarm()
