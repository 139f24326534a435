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
