"""How a ``command``'s exit status reads once the runner has forwarded a stop signal to it.

A preemption signal the runner forwards (SIGUSR1, SIGTERM, ...) is the command's request to
checkpoint and stop.  A command that does not handle it, or gets it before it armed its handler,
or while the interpreter is already shutting down (CPython restores the default handlers then),
dies of it.  How that death reaches the runner depends on who sits in between:

* the command itself: status ``-S`` (Popen's "killed by signal S");
* a shell or a shell-like launcher: exit ``128 + S`` (bash's convention);
* a Python launcher that passed its child's ``subprocess.call`` status to ``sys.exit``:
  exit ``(-S) & 0xFF`` = ``256 - S``.

Each of these, for a signal the runner forwarded, is a preemption the training did not finish
handling: resumable from its last checkpoint, never a failure that spends the failure budget.
Any other status keeps its own meaning.  `death_by_forwarded` is a pure function, tested as a table.
"""

from __future__ import annotations

import signal
from collections.abc import Collection


def death_by_forwarded(rc: int, forwarded: Collection[int]) -> str | None:
    """Why ``rc`` reads as death by one of the ``forwarded`` signals (a reason), or None."""
    for signum in sorted(set(forwarded)):
        name = signal.Signals(signum).name
        if rc == -signum:
            return f"the command died of the forwarded {name}"
        if rc in (128 + signum, (-signum) & 0xFF):
            return f"the command exited {rc}: its child died of the forwarded {name}"
    return None
