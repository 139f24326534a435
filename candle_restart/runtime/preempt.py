"""Preemption requests: signals become a flag that training polls at batch ends.

A scheduler warns a job before it ends (Slurm: ``--signal=B:USR1@N``, or
USR1 from ``preempt_send_user_signal``, then TERM after GraceTime).  The
handlers installed by `arm` only record the request in `REQUEST`; they never
write, log or raise, because a handler runs between two bytecodes of whatever
the main thread was doing (a commit, a TensorFlow call, a lock held by
``logging``).  The training loop checks `REQUEST` at the next batch end,
commits a checkpoint through the normal protocol and raises `Preempted`,
which ends the process with `EXIT_RESUME` (75, EX_TEMPFAIL) unless caught.

The training may also ask itself to stop: `PreemptionRequest.halt`, when
the allocation is about to end and no signal came (see
`candle_restart.ckpt.pacing`).  It is served the same way; `Preempted.cause`
then says ``timeout`` instead of ``preempted`` (the task runner records it).

A second signal changes nothing but the count: the first request is already
being served.  `arm` nests: handlers are installed by the outermost caller
(the task runner, or the callback when a script runs without the runner)
and restored when it disarms.

A process that ever armed a signal ignores it while it exits (an ``atexit``
hook): CPython puts ``SIG_DFL`` back in place of Python handlers when the
interpreter finalizes, so a late signal (Slurm's TERM after USR1, a second
USR1) would otherwise kill a process that has already committed and is
exiting 75 (measured: a process sent USR1 in a loop while it exited 75 died
of it every time, under TensorFlow, JAX and torch).  Only ``SIGKILL`` ends a
process stuck in its finalization.

A child forked from an armed process (a data loader's worker pool: ``PyDataset(workers=2,
use_multiprocessing=True)``, ``multiprocessing`` on Linux) starts with no request and with
SIGTERM as it was before `arm`: it is not the training, and its parent ends it with SIGTERM
(``Pool.terminate``); inherited, the record-only handler made it ignore that TERM, and the
parent waited for it forever.  The other armed signals (USR1, USR2, INT) are caught and
dropped in the child (not ``SIG_IGN``, which a later exec would keep): the task runner forwards
them to the training's whole process group, and a worker that died of one would leave the
training waiting for its batch.  (A SIGTERM sent to the whole group, as ``scancel`` sends it,
ends such workers as it would without this package: prefer a notice signal, Slurm's
``--signal=B:USR1@N``, with a pool of workers.)
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType

from candle_restart.runtime.heartbeat import HEARTBEAT

EXIT_COMPLETED = 0
EXIT_TRAINING_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_BUSY = 3  # not run: another runner of the task is alive (nothing was recorded in its state)
EXIT_RESUME = 75
# Not a runner's: the ``candle-restart`` commands' own.
EXIT_IO_ERROR = 1  # a command could not read or write (a full disk): one line, worth a retry
EXIT_INTERRUPTED = 130  # ``sweep run`` stopped by Ctrl-C (128 + SIGINT, as a shell shows it)

# A signal's disposition, as `signal.signal` returns and takes it.
Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None

DEFAULT_SIGNALS = ("USR1", "TERM", "INT")  # ``ckpt_signals``
EXTRA_SIGNAL = "USR2"  # ``ckpt_extra_signal`` (one more; "none" where NCCL takes USR1)


class Preempted(SystemExit):
    """Raised after a requested checkpoint was committed; exits the process with 75.

    ``cause`` (``preempted`` or ``timeout``) defaults to `REQUEST`'s; it is written into the
    task's heartbeat file (`candle_restart.runtime.heartbeat`), where the runner reads it.
    """

    def __init__(self, reason: str, cause: str | None = None) -> None:
        super().__init__(EXIT_RESUME)
        self.reason = reason
        self.cause = cause or REQUEST.cause
        HEARTBEAT.stopped(self.cause)  # a command's exit 75 cannot say why; its heartbeat file does

    def __str__(self) -> str:
        return self.reason


@dataclass
class PreemptionRequest:
    """The process-wide record of a "checkpoint now and stop" request."""

    signum: int | None = None
    count: int = 0
    received: float = 0.0  # time.monotonic() of the first request
    halted: str = ""  # why the training asked itself to stop (the walltime), when no signal came first
    _previous: dict[int, Handler] = field(default_factory=dict)
    _depth: int = 0
    _ever_armed: set[int] = field(default_factory=set)  # ignored at exit (see the module docstring)

    @property
    def requested(self) -> bool:
        return self.signum is not None or bool(self.halted)

    @property
    def name(self) -> str:
        if self.signum is not None:
            return signal.Signals(self.signum).name
        return "walltime" if self.halted else "none"

    @property
    def cause(self) -> str:
        """``timeout`` for a halt before the walltime, else ``preempted``."""
        return "timeout" if self.halted and self.signum is None else "preempted"

    def request(self, signum: int) -> None:
        """Record a request (what the handlers call; safe inside a signal handler)."""
        if not self.requested:
            self.received = time.monotonic()
            self.signum = signum
        self.count += 1

    def halt(self, why: str) -> None:
        """Record the training's own request to stop (the walltime is near); a first request wins."""
        if not self.requested:
            self.received = time.monotonic()
            self.halted = why or "halt"

    def clear(self) -> None:
        self.signum, self.count, self.received, self.halted = None, 0, 0.0, ""


REQUEST = PreemptionRequest()


def parse_signals(names: Iterable[str]) -> list[signal.Signals]:
    """Signal names ("USR1", "SIGTERM", "15") to signals; ValueError names the bad one."""
    found: list[signal.Signals] = []
    for raw in names:
        name = str(raw).strip().upper()
        if not name:
            continue
        try:
            sig = (
                signal.Signals(int(name))
                if name.isdigit()
                else signal.Signals[name if name.startswith("SIG") else "SIG" + name]
            )
        except (KeyError, ValueError):
            raise ValueError(f"unknown signal {raw!r}") from None
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError(f"{sig.name} cannot be caught")
        found.append(sig)
    return found


def _handler(signum: int, _frame: FrameType | None) -> None:
    REQUEST.request(signum)


def arm(signals: Iterable[signal.Signals]) -> Callable[[], None]:
    """Install request handlers for ``signals`` (outermost call only); return the disarm function.

    Outside the main thread signals cannot be handled; then nothing is
    installed and the returned function does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    REQUEST._depth += 1
    if REQUEST._depth == 1:
        if not REQUEST._ever_armed:
            atexit.register(_ignore_while_exiting)
        for sig in signals:
            REQUEST._previous[sig] = signal.signal(sig, _handler)
            REQUEST._ever_armed.add(sig)
    disarmed = False

    def disarm() -> None:
        nonlocal disarmed
        if disarmed:
            return
        disarmed = True
        REQUEST._depth -= 1
        if REQUEST._depth == 0:
            for sig, previous in REQUEST._previous.items():
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
            REQUEST._previous.clear()

    return disarm


def _dropped(_signum: int, _frame: FrameType | None) -> None:
    """A forked child's notice signal: caught and dropped (not ``SIG_IGN``, which an exec keeps)."""


def _after_fork_in_child() -> None:
    """The child of a fork: SIGTERM's disposition before `arm` is put back, the other armed signals
    are dropped, and nothing is requested (see the module docstring)."""
    for sig, previous in REQUEST._previous.items():
        disposition = previous if sig == signal.SIGTERM else _dropped
        try:
            signal.signal(sig, disposition if disposition is not None else signal.SIG_DFL)
        except ValueError:  # not the main thread (a fork from a thread elsewhere than CPython)
            break
    REQUEST._previous.clear()
    REQUEST._ever_armed.clear()
    REQUEST._depth = 0
    REQUEST.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _ignore_while_exiting() -> None:
    """The ``atexit`` hook: every signal `arm` ever installed is ignored from now on (the process is exiting)."""
    if threading.current_thread() is threading.main_thread():
        for sig in REQUEST._ever_armed:
            signal.signal(sig, signal.SIG_IGN)


def armed_signals() -> list[int]:
    """The signals whose handlers `arm` installed and has not yet restored."""
    return list(REQUEST._previous)
