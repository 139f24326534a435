"""A "second host" for the tests: processes with their own host name, on the same machine.

``Host("node-b").spawn([...])`` starts a command in a new UTS namespace (``unshare(CLONE_NEWUTS)``
then ``sethostname``, done by a small Python boot that then ``exec``s the command, so the
returned PID is the command's). In it ``socket.gethostname()`` is ``node-b``; everything else is
shared with the test: the mounts (the fault filesystem included), the network, the user and, unlike
a real cluster, the PID namespace: the other host's PIDs are visible and signalable from both sides.

That is enough for filelock and our leases: filelock's same-host liveness check compares the
record's host name with ``socket.gethostname()`` first, so a holder recorded under another name is
"remote" and is never judged dead by its PID, only by its lease expiring (what a real second node
sees). A test must not rely on a PID check failing across hosts; it would not fail here.

Needs CAP_SYS_ADMIN (root). ``second_host_unavailable()`` says why it cannot be used, or ``None``.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

# Run by a fresh interpreter, so no fork-with-threads hazard: unshare, set the name, exec the command.
_BOOT = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
name = sys.argv[1].encode()
if libc.unshare(0x04000000) != 0 or libc.sethostname(name, len(name)) != 0:  # CLONE_NEWUTS
    sys.exit(f"second host {sys.argv[1]!r}: {os.strerror(ctypes.get_errno())} (needs CAP_SYS_ADMIN)")
os.execvp(sys.argv[2], sys.argv[2:])
"""


def host_command(hostname: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` (``argv[0]`` looked up on PATH) as host ``hostname``."""
    if not argv:
        raise ValueError("no command to run")
    return [sys.executable, "-c", _BOOT, hostname, *argv]


@functools.lru_cache(maxsize=1)
def second_host_unavailable() -> str | None:
    """Why a second host cannot be made here (tried once per process), or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return f"a second host needs Linux UTS namespaces, not {sys.platform}"
    probe = [sys.executable, "-c", "import socket; print(socket.gethostname())"]
    try:
        done = subprocess.run(host_command("candle-probe", probe), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"a second host could not be started: {exc}"
    if done.returncode != 0 or done.stdout.strip() != "candle-probe":
        return f"a second host could not be made: {(done.stderr or done.stdout).strip()[-500:]}"
    return None


class Host:
    """A named host; ``spawn``/``run``/``python`` start processes on it. ``close()`` SIGKILLs (by PID)
    those it started that are still running."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._spawned: list[subprocess.Popen[Any]] = []

    def spawn(self, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` of ``argv`` on this host (keyword arguments passed on)."""
        proc: subprocess.Popen[Any] = subprocess.Popen(host_command(self.name, argv), **popen)
        self._spawned.append(proc)
        return proc

    def python(self, code: str, *args: str, **popen: Any) -> subprocess.Popen[Any]:
        """Start ``python -c code args...`` (this interpreter) on this host."""
        return self.spawn([sys.executable, "-c", code, *args], **popen)

    def run(self, argv: Sequence[str], timeout: float = 120, **run: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` of ``argv`` on this host."""
        return subprocess.run(host_command(self.name, argv), timeout=timeout, check=False, **run)

    def close(self) -> None:
        for proc in self._spawned:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        self._spawned.clear()
