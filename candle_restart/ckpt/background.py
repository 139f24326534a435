"""Asynchronous commits: training waits for an in-memory snapshot, a thread writes and commits it.

Contract of `BackgroundCommit`:

* at most one commit is in flight; `start` first waits for the previous one
  (and logs how long it waited), so memory holds at most one snapshot;
* the thread owns only its own objects: it runs a job (a function of an
  immutable job description) and keeps the job's result, or its exception,
  here; the training thread takes the result with `wait` or `poll` and applies
  it itself (nothing of the callback is written by the commit thread);
* the commit itself is the ordinary protocol (`candle_restart.ckpt.commit`),
  so ``last`` and ``best`` move only when a checkpoint is whole, and a
  process killed mid-commit leaves no partial checkpoint;
* an exception in the thread is never swallowed: it is logged at once and
  raised again, the same exception object, in the caller's thread by the next
  `wait` or `raise_failure` (the callback calls the latter at every batch and
  epoch end);
* the thread is not a daemon, so a process that ends normally waits for the
  commit in flight before it exits;
* what the thread logs reaches stdout only when the owner releases it
  (`candle_restart.ckpt.log.console_held`), never inside a progress line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from candle_restart.ckpt.log import console_held

R = TypeVar("R")


class BackgroundCommit(Generic[R]):
    """Runs one commit at a time in a thread of its own (see the module docstring)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._thread: threading.Thread | None = None
        self._label = ""
        self._started = 0.0
        self._failure: BaseException | None = None
        self._result: R | None = None  # set by the thread, taken by the training thread
        self.waited_seconds = 0.0  # total time callers spent waiting for a commit in flight
        self.commits = 0  # commits started
        self.cpu_seconds = 0.0  # CPU time the commit threads used, in all (what they took from training)

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, label: str, job: Callable[[], R]) -> R | None:
        """Wait for the commit in flight (raising its failure), then run ``job`` in a new thread.

        Returns the result of the commit waited for, if one finished since the last `wait`/`poll`.
        """
        earlier = self.wait()

        def run() -> None:
            cpu = time.thread_time()
            with console_held():
                try:
                    self._result = job()
                except BaseException as exc:  # handed to the training thread, never dropped
                    self._failure = exc
                    self._log(f"background commit of {label} failed: {exc}")
                finally:
                    self.cpu_seconds += time.thread_time() - cpu

        self._label, self._started = label, time.monotonic()
        self.commits += 1
        self._thread = threading.Thread(target=run, name=f"candle-commit {label}", daemon=False)
        self._thread.start()
        return earlier

    def wait(self) -> R | None:
        """Block until no commit is in flight; raise the failure of the last one, else return its result
        (None when there is none not yet taken)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            begun = time.monotonic()
            self._log(
                f"waiting for the commit of {self._label} "
                f"(started {begun - self._started:.3f} seconds ago) ..."
            )  # "waiting for the commit" (before a save, a stop or the exit)
            thread.join()
            waited = time.monotonic() - begun
            self.waited_seconds += waited
            self._log(f"waited {waited:.3f} seconds for the commit of {self._label}.")
        self._thread = None
        self.raise_failure()
        return self.poll()

    def poll(self) -> R | None:
        """The result of a finished commit not taken yet (never blocks; None while one runs)."""
        if self.busy:
            return None
        result, self._result = self._result, None
        return result

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the commit in flight to end, raising nothing; True if none is left."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    @property
    def failed(self) -> bool:
        """A finished commit failed and its exception has not been raised yet."""
        return self._failure is not None

    def raise_failure(self) -> None:
        """Raise (once) the exception of a finished commit; never blocks."""
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure
