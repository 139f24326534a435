"""Run a command whose processes die with its runner: ``python -S pdeathsig.py RUNNER_PID COMMAND [ARGS...]``.

The task runner starts a ``command`` through this file (by path, with ``-S``: it imports only
the standard library, so it costs a bare interpreter's start) in a session of its own.  This
process asks the kernel for `DEATH_SIGNAL` when its parent (the runner's thread that started
it) dies (``PR_SET_PDEATHSIG``), checks that the runner has not died already, and runs the
command as its child in its own process group.  When the runner dies, however it dies (SIGKILL,
the OOM killer, a lost allocation), the handler of `DEATH_SIGNAL` kills the whole group with
SIGKILL: the command and whatever it started, on any host.

The signals the runner forwards to the group (`FORWARDED`) reach the command; this process
only waits for it, then ends the same way: its exit code, or the signal that killed it.

Exit codes of its own: `EXIT_CANNOT_RUN` with `CANNOT_RUN` and the reason as the last line of
stderr when the command cannot be executed; 137 when the runner was gone before the command ran.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys
from types import FrameType

PR_SET_PDEATHSIG = 1
DEATH_SIGNAL = signal.SIGRTMIN + 3  # never one a runner forwards
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
EXIT_CANNOT_RUN = 127
CANNOT_RUN = "candle-restart: cannot run "  # the start of the line the runner reads back


def _runner_died(_signum: int, _frame: FrameType | None) -> None:
    os.killpg(0, signal.SIGKILL)  # the group goes at once, this process with it: nothing is left to do


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """A forwarded signal is the command's; caught (not ignored) so that exec gives it the default back."""


def main(argv: list[str]) -> int:
    parent, command = int(argv[0]), argv[1:]
    signal.signal(DEATH_SIGNAL, _runner_died)
    for sig in FORWARDED:
        signal.signal(sig, _ignore)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(DEATH_SIGNAL), 0, 0, 0) != 0:
        print(f"candle-restart: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    if os.getppid() != parent:  # the runner died between starting this process and the prctl
        return 128 + int(signal.SIGKILL)
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            print(f"{CANNOT_RUN}{command[0]!r}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        os._exit(EXIT_CANNOT_RUN)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):  # end as the command did, so the runner sees the same
        killed = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the command's core (if any) is the one to keep
        with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP keep their action anyway
            signal.signal(killed, signal.SIG_DFL)
        os.kill(os.getpid(), killed)
        return 128 + killed
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
