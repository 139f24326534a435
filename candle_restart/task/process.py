"""Is a process recorded as (host, pid, start time) still alive?  Linux ``/proc``, pid-reuse safe.
Was it killed for memory?  The kernel's log (`oom_killed`).  Forking workers from a process that
may have run TensorFlow: `fork_safe`."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

Liveness = Literal["pending", "running", "ended", "unknown"]


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot; None if it does not exist or is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def pid_alive(host: str, pid: int, start: int | None) -> Liveness:
    """``running`` or ``ended`` on this host (a different start time means the pid was reused);
    ``unknown`` for another host."""
    if host != socket.gethostname():
        return "unknown"
    current = process_start(pid)
    if current is None or (start is not None and current != start):
        return "ended"
    return "running"


_OOM_KILL = re.compile(r"^\[\s*(\d+(?:\.\d+)?)\][^\n]*Killed process (\d+) \(", re.MULTILINE)


def oom_killed(pid: int, start: int | None = None) -> bool | None:
    """Whether the kernel's log records an out-of-memory kill of ``pid`` (after its ``start``,
    in clock ticks since boot, so a reused pid's old record does not count).

    None when the log cannot be read (no ``dmesg``, or ``kernel.dmesg_restrict`` for a user).
    Only meaningful on the host the process ran on.
    """
    try:
        proc = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    since = start / os.sysconf("SC_CLK_TCK") if start else 0.0
    return any(
        int(m.group(2)) == pid and float(m.group(1)) >= since for m in _OOM_KILL.finditer(proc.stdout)
    )


@contextlib.contextmanager
def fork_safe() -> Iterator[None]:
    """Around forking worker processes: collect garbage here, then freeze what is left.

    A forked child has only the forking thread.  Were its garbage collector to destroy an
    object inherited from the parent that waits on the parent's other threads (a TensorFlow
    dataset iterator left by training in this process does), the child would wait forever;
    frozen objects are never collected in the child.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
