"""Child processes of the tests: the task runner, the ``candle-restart`` command, the example benchmark.

Each child runs from the repository with it first on ``PYTHONPATH`` (so it imports this
checkout and the ``tests`` package: toy entries, trainers) and with TensorFlow's C++ logging quiet.
"""

from __future__ import annotations

import os
import select
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.tiering import ROOT, child_pythonpath

EXAMPLE = "candle_restart.examples.regression"
HANG = 300  # seconds: only a hung command gets near this; it ends the test instead of CI


def runner_env() -> dict[str, str]:
    """This process's environment, plus ``PYTHONPATH`` = the repository and TensorFlow quiet.

    (In the unit and process tiers ``PYTHONPATH`` also refuses TensorFlow: `child_pythonpath`.)"""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": child_pythonpath()}


def start_runner(task_dir: Path) -> subprocess.Popen[str]:
    """``python -m candle_restart.task TASK_DIR``, started; its stderr is a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "candle_restart.task", str(task_dir)],
        cwd=ROOT,
        env=runner_env(),
        text=True,
        stderr=subprocess.PIPE,
    )


def run_runner(task_dir: Path) -> tuple[int, str]:
    """Run the task runner on ``task_dir`` to its end: (exit code, stderr)."""
    proc = start_runner(task_dir)
    _out, err = proc.communicate()
    return proc.returncode, err


def cli(*args: object, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m candle_restart.cli ARGS`` with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", *map(str, args)],
        cwd=cwd,
        env=runner_env(),
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=HANG,
    )


def run_example(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the example benchmark with ``args``; with ``check``, AssertionError unless it exits 0."""
    proc = subprocess.run(
        [sys.executable, "-m", EXAMPLE, *args], cwd=cwd, env=runner_env(), text=True, capture_output=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"example failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return proc


def start_example(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """The example benchmark with ``args``, started; stdout is a pipe, stderr is dropped."""
    return subprocess.Popen(
        [sys.executable, "-m", EXAMPLE, *args],
        cwd=cwd,
        env=runner_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def wait_for_pids(pids: list[int]) -> None:
    """Block until every process in ``pids`` has exited (pidfd: works for processes we did not start)."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [])
        finally:
            os.close(fd)


def open_progress(fifo: Path) -> int:
    """Make ``fifo`` and open it for reading before the writer exists (O_RDWR never blocks on Linux)."""
    os.mkfifo(fifo)
    return os.open(fifo, os.O_RDWR)


def progress(fd: int, proc: subprocess.Popen[str]) -> Iterator[tuple[int, int]]:
    """(epoch, batch) pairs reported through the FIFO; AssertionError if ``proc`` exits first.

    Waits on the FIFO and on the runner's stderr pipe together, so a runner
    that dies early ends the wait instead of hanging the test.
    """
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ, "fifo")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    buffered, errors = b"", list[str]()
    while True:
        for key, _ in sel.select():
            if key.data == "stderr":
                chunk = proc.stderr.readline()
                if not chunk:
                    raise AssertionError("runner exited before reporting progress:\n" + "".join(errors))
                errors.append(chunk)
                continue
            buffered += os.read(fd, 4096)
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                epoch, batch = map(int, line.split())
                yield epoch, batch


def is_stopped(pid: int) -> bool:
    """True while process ``pid`` is stopped (SIGSTOP): state ``T`` in ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def wait_stopped(pid: int, deadline: float = 60.0) -> None:
    """Poll until process ``pid`` is stopped; AssertionError after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not is_stopped(pid):
        assert time.monotonic() < end, f"pid {pid} never stopped"
        time.sleep(0.02)  # polling a condition with a deadline


def read_until(proc: subprocess.Popen[str], prefix: str, deadline: float = 60.0) -> list[str]:
    """Lines of ``proc``'s stdout up to and including the first that starts with ``prefix``;
    AssertionError (with the lines read) when it ends first.  A process that prints no such
    line within ``deadline`` seconds is killed (SIGKILL, by this Popen), which ends the wait.
    Reads through ``proc.stdout``'s own buffer, so a later ``communicate`` loses nothing."""
    assert proc.stdout is not None
    lines: list[str] = []
    watchdog = threading.Timer(deadline, proc.kill)
    watchdog.start()
    try:
        for line in iter(proc.stdout.readline, ""):
            lines.append(line.strip())
            if line.startswith(prefix):
                return lines
    finally:
        watchdog.cancel()
    raise AssertionError(f"no line starting with {prefix!r} from pid {proc.pid}: {lines}")


class Lockstep:
    """A progress FIFO (as `open_progress`) whose writer, the example's reporter, waits at every
    batch end for this side's go-ahead: a signal sent on seeing (epoch, batch) lands there, however
    fast the training runs.  `close` lets the training run free (and must be called)."""

    def __init__(self, fifo: Path) -> None:
        self.fd = open_progress(fifo)
        ack = fifo.with_name(fifo.name + ".ack")
        os.mkfifo(ack)
        self.ack = os.open(ack, os.O_RDWR)  # the writer end, held before the training opens it to read

    def batches(self, proc: subprocess.Popen[str]) -> Iterator[tuple[int, int]]:
        """(epoch, batch) pairs as `progress`; the training goes on past one when the next is asked for."""
        for reported in progress(self.fd, proc):
            yield reported
            os.write(self.ack, b"g")

    def close(self) -> None:
        os.close(self.ack)
        os.close(self.fd)
