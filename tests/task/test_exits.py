"""A command's death by a forwarded stop signal is a preemption, however a launcher reports it.

The table tests `death_by_forwarded`; the last test runs a real runner, a real Python launcher and
a real child that never arms a handler, and sends the runner a real SIGUSR1."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from candle_restart.records.jsontypes import JsonObject
from candle_restart.runtime.preempt import EXIT_RESUME
from candle_restart.task import create_task
from candle_restart.task.exits import death_by_forwarded
from tests.helpers import journal, start_runner, state

USR1, TERM = int(signal.SIGUSR1), int(signal.SIGTERM)


@pytest.mark.parametrize(
    ("rc", "forwarded", "said"),
    [
        (-USR1, [USR1], "died of the forwarded SIGUSR1"),  # the command itself
        (128 + USR1, [USR1], "exited 138: its child died of the forwarded SIGUSR1"),  # a shell
        (256 - USR1, [USR1], "exited 246: its child died of the forwarded SIGUSR1"),  # sys.exit(-10)
        (128 + TERM, [USR1, TERM], "exited 143: its child died of the forwarded SIGTERM"),
        (-USR1, [], None),  # nobody forwarded it: a kill from elsewhere is not a preemption
        (-signal.SIGKILL, [USR1], None),
        (128 + USR1, [TERM], None),  # the code of a signal that was not forwarded
        (246, [], None),
        (1, [USR1], None),  # an ordinary error stays one, signal or not
        (0, [USR1], None),
        (EXIT_RESUME, [USR1], None),  # its own "resume me" is read before this
    ],
)
def test_death_by_a_forwarded_signal_reads_the_same_from_a_child_a_shell_or_a_python_launcher(
    rc: int, forwarded: list[int], said: str | None
) -> None:
    got = death_by_forwarded(rc, forwarded)
    assert got == (None if said is None else f"the command {said}")


UNARMED = r"""
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(600)  # never arms a SIGUSR1 handler: the signal's default action ends it
"""
PY_LAUNCHER = r"""
import signal, subprocess, sys
signal.signal(signal.SIGUSR1, lambda s, f: None)  # handled, not ignored: the child gets the default
sys.exit(subprocess.call([sys.executable, *sys.argv[1:]]))  # a child's -10 becomes exit 246
"""


def test_a_launcher_whose_child_dies_of_the_forwarded_signal_is_resumed_not_failed(tmp_path: Path) -> None:
    (tmp_path / "child.py").write_text(UNARMED)
    (tmp_path / "launcher.py").write_text(PY_LAUNCHER)
    started = tmp_path / "started"
    command = [sys.executable, str(tmp_path / "launcher.py"), str(tmp_path / "child.py"), str(started)]
    params: JsonObject = {"epochs": 3}
    task = create_task(tmp_path / "run", params, command=command, dir_flags=False).path
    runner = start_runner(task)
    deadline = time.monotonic() + 120
    while not started.exists():  # the child is running (and will never arm a handler)
        assert runner.poll() is None and time.monotonic() < deadline, runner.communicate()
        time.sleep(0.05)
    runner.send_signal(signal.SIGUSR1)
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == EXIT_RESUME, err
    assert state(task)["status"] == "preempted", state(task)
    assert state(task)["reason"] == "the command exited 246: its child died of the forwarded SIGUSR1"
    ends = [e for e in journal(task) if e.kind == "exit"]
    assert [(e.status, e.cause) for e in ends] == [("preempted", "preempted")], ends
