"""Run a command that dies with its runner: ``python -S pdeathsig.py RUNNER_PID COMMAND [ARGS...]``.

The task runner starts a ``command`` through this file (by path, with ``-S``: it imports only
the standard library, so it costs a bare interpreter's start).  It asks the kernel to send
SIGKILL to this process when its parent (the runner's thread that started it) dies
(``PR_SET_PDEATHSIG``), checks that the runner has not died already, then replaces itself with
the command (``execvp``), which keeps the setting.  A runner killed with SIGKILL (the OOM
killer, a lost allocation, a user) so takes its command along at once.

Exit codes of its own: `EXIT_CANNOT_RUN` with `CANNOT_RUN` and the reason as the last line of
stderr when the command cannot be executed; 137 when the runner was gone before the command ran.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
EXIT_CANNOT_RUN = 127
CANNOT_RUN = "candle-restart: cannot run "  # the start of the line the runner reads back


def main(argv: list[str]) -> int:
    parent, command = int(argv[0]), argv[1:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        print(f"candle-restart: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    if os.getppid() != parent:  # the runner died between starting this process and the prctl
        return 128 + int(signal.SIGKILL)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"{CANNOT_RUN}{command[0]!r}: {exc.strerror or exc}", file=sys.stderr, flush=True)
    return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
