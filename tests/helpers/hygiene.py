"""What no test may leave behind for the next one (a pytest plugin, loaded by ``tests/conftest.py``).

After every test (its fixtures' teardown included) the autouse fixture ``_hygiene`` fails it
when it left

* a pending preemption request (`REQUEST`), or handlers that ``arm`` installed;
* a signal handler changed from what it was before the test;
* a commit, drain or lease heartbeat thread still running (after a short wait) that it started.
  First the checkpoint objects it made (every `CandleCkpt`: the test is their process) give their
  writer leases back, as at the end of a process (`end_of_test`): one dropped without
  ``release_writer`` or the end of ``fit`` holds its lease until the process ends.

It then puts things back (clears the request, restores the handlers), so one leak fails one test.
A test that makes a request, or leaves the request handlers armed, on purpose takes the
``preemption`` fixture, which clears both after it.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from candle_restart.candle.facade import CandleCkpt
from candle_restart.runtime.preempt import REQUEST, PreemptionRequest

THREADS = ("candle-commit", "candle-drain", "filelock-lease")  # the names our threads start with
WAIT = 5.0  # seconds a finishing thread is given to end (an fsync on a loaded machine takes seconds)
# SIGALRM is pytest-timeout's (set around each phase); SIGKILL and SIGSTOP cannot be caught.
_WATCHED = sorted(set(signal.valid_signals()) - {signal.SIGALRM, signal.SIGKILL, signal.SIGSTOP})


_made: weakref.WeakSet[CandleCkpt] = weakref.WeakSet()  # the checkpoint objects of the running test
_init = CandleCkpt.__init__


def _made_here(self: CandleCkpt, *args: Any, **kwargs: Any) -> None:
    _init(self, *args, **kwargs)
    _made.add(self)


CandleCkpt.__init__ = _made_here  # type: ignore[method-assign]


def end_of_test() -> None:
    """What a process's end does for the checkpoint objects of a test: each gives its writer lease
    back, after its commit in flight (failed or not)."""
    for ckpt in list(_made):
        with contextlib.suppress(Exception):
            ckpt.release_writer()
    _made.clear()


def _handlers() -> dict[int, object]:
    return {int(sig): signal.getsignal(sig) for sig in _WATCHED}


def _ours(before: set[threading.Thread]) -> list[threading.Thread]:
    return [
        t for t in threading.enumerate() if t not in before and t.is_alive() and t.name.startswith(THREADS)
    ]


def _reset_request() -> None:
    for sig, previous in REQUEST._previous.items():
        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    REQUEST._previous.clear()
    REQUEST._depth = 0
    REQUEST.clear()


@pytest.fixture
def preemption() -> Iterator[PreemptionRequest]:
    """The process's preemption request, for a test that makes one (or leaves its handlers armed)
    on purpose: cleared (and disarmed) after it."""
    yield REQUEST
    _reset_request()


@pytest.fixture(autouse=True)
def _hygiene() -> Iterator[None]:
    handlers, threads = _handlers(), set(threading.enumerate())
    yield
    problems: list[str] = []
    if REQUEST.requested:
        problems.append(f"a pending preemption request ({REQUEST.name})")
    if REQUEST._depth or REQUEST._previous:
        armed = ", ".join(signal.Signals(s).name for s in sorted(REQUEST._previous))
        problems.append(f"request handlers still armed for {armed or 'no signal'}")
    _reset_request()
    changed = [sig for sig, handler in _handlers().items() if handlers[sig] != handler]
    for sig in changed:
        signal.signal(sig, handlers[sig])  # type: ignore[arg-type]
    if changed:
        problems.append("changed signal handlers: " + ", ".join(signal.Signals(s).name for s in changed))
    end_of_test()
    left = _wait(lambda: _ours(threads))
    if left:
        problems.append("threads still running: " + ", ".join(sorted(t.name for t in left)))
    if problems:
        pytest.fail("the test left " + "; ".join(problems), pytrace=False)


def _wait(still: Callable[[], list[threading.Thread]]) -> list[threading.Thread]:
    """``still()`` polled until empty or `WAIT` seconds pass, collecting garbage in between."""
    deadline = time.monotonic() + WAIT
    left = still()
    while left and time.monotonic() < deadline:
        gc.collect()
        for thread in left:
            thread.join(timeout=0.1)
        left = still()
    return left
