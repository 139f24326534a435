"""A task's processes live and die together.

Every process of an attempt carries ``CANDLE_RESTART_TASK_DIR`` in its environment (the runner
sets it for a ``command`` and, while an ``entry`` runs, for the children the training starts;
children inherit it), so the processes of a task on this host are found by it
(`task_processes`), whatever they did with their process group or session.

* A ``command`` is started through `candle_restart.task.pdeathsig` in a session of its own
  (`guarded_argv`): when its runner dies, however it dies, its whole process group is killed,
  on any host; the runner's forwarded signals reach the whole group.
* When an attempt ends, what it leaves behind is ended (`end_processes`: SIGTERM, then SIGKILL
  after `GRACE_SECONDS`).
* Before a runner starts an attempt, it ends what an earlier attempt left on this host (a
  process that left the command's process group, or an entry's child, when the runner was
  killed): a task's run counts as live while any process of it lives, and a runner that cannot
  end one does not run.

Only this host's processes can be seen (and only the user's own): on another host the first
point is what holds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from candle_restart.runtime.envvars import TASK_DIR_ENV
from candle_restart.task import pdeathsig
from candle_restart.task.process import process_start

GRACE_SECONDS = 10.0  # from SIGTERM to SIGKILL: time for a checkpoint signal's commit
KILL_WAIT_SECONDS = 10.0  # after SIGKILL: a process in uninterruptible I/O may take a while
_POLL = 0.05
_MARKER = f"{TASK_DIR_ENV}=".encode()


def guarded_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` run through `candle_restart.task.pdeathsig`: its process group dies with this process
    (start it in a session of its own)."""
    return [sys.executable, "-S", pdeathsig.__file__, str(os.getpid()), *argv]


def _ancestors() -> set[int]:
    """This process and every process above it (none of them is ever ended)."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
    return found


def _task_dir_of(environ: bytes) -> str | None:
    for item in environ.split(b"\0"):
        if item.startswith(_MARKER):
            return os.fsdecode(item[len(_MARKER) :])
    return None


def task_processes(task_dir: str | os.PathLike[str]) -> dict[int, int]:
    """The live processes of this host (``pid: start time``) whose environment names ``task_dir``
    as their task, except this process and its ancestors; zombies do not count."""
    wanted = os.path.realpath(task_dir)
    skip = _ancestors()
    found: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if _MARKER not in environ:
            continue
        value = _task_dir_of(environ)
        if value is None or os.path.realpath(value) != wanted:
            continue
        start = process_start(int(entry.name))
        if start is not None:
            found[int(entry.name)] = start
    return found


def _alive(processes: dict[int, int]) -> dict[int, int]:
    return {pid: start for pid, start in processes.items() if process_start(pid) == start}


def _wait(processes: dict[int, int], seconds: float) -> dict[int, int]:
    deadline = time.monotonic() + seconds
    alive = _alive(processes)
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL)
        alive = _alive(alive)
    return alive


def _signal(processes: dict[int, int], signum: signal.Signals) -> None:
    for pid in _alive(processes):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def end_processes(processes: dict[int, int], grace: float = GRACE_SECONDS) -> list[int]:
    """End ``processes`` (``pid: start time``): SIGTERM, SIGKILL after ``grace`` seconds; return
    the pids still alive after `KILL_WAIT_SECONDS` more (none, unless stuck in the kernel)."""
    _signal(processes, signal.SIGTERM)
    alive = _wait(processes, grace)
    if alive:
        _signal(alive, signal.SIGKILL)
        alive = _wait(alive, KILL_WAIT_SECONDS)
    return sorted(alive)


def cannot_run(code: int, stderr_tail: Sequence[str]) -> str | None:
    """Why the command could not be executed (the wrapper's last stderr line), or None when it ran."""
    line = stderr_tail[-1] if stderr_tail else ""
    if code == pdeathsig.EXIT_CANNOT_RUN and line.startswith(pdeathsig.CANNOT_RUN):
        return line.removeprefix("candle-restart: ")
    return None
