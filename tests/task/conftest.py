"""Helpers: run the task runner as a real child process, and read a task directory."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from candle_restart.task import TaskDir

ROOT = Path(__file__).resolve().parents[2]


def runner_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def start_runner(task_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "candle_restart.task", str(task_dir)],
        cwd=ROOT,
        env=runner_env(),
        text=True,
        stderr=subprocess.PIPE,
    )


def run_runner(task_dir: Path) -> tuple[int, str]:
    proc = start_runner(task_dir)
    _out, err = proc.communicate()
    return proc.returncode, err


def state(task_dir: Path) -> dict[str, Any]:
    return json.loads((task_dir / "state.json").read_text())


def journal(task_dir: Path) -> list[dict[str, Any]]:
    """The task's journal and its runners' events, merged in time order; every line must be whole."""
    for name in ("journal.jsonl", "runs.jsonl"):
        if (task_dir / name).exists():
            for line in (task_dir / name).read_text().splitlines():
                json.loads(line)  # raises on a torn line
    return TaskDir(task_dir).read_journal()


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
    buffered, errors = b"", []
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
