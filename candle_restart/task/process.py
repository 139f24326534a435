"""Is a process recorded as (host, pid, start time) still alive?  Linux ``/proc``, pid-reuse safe."""

from __future__ import annotations

import socket
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
