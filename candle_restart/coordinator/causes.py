"""Why each attempt of a task ended, counted per cause, and whether the attempts make progress.

Every attempt's end gets one cause:

* ``preempted``: a signal (Slurm's preemption or warning signal, scancel's TERM
  before the walltime), exit 75;
* ``timeout``: the allocation's walltime (Slurm TIMEOUT, or the checkpoint
  callback's own halt before it);
* ``node_fail``: the runner vanished without recording its end (a lost node,
  kill -9), or Slurm says NODE_FAIL / BOOT_FAIL;
* ``oom``: killed for memory (Slurm OUT_OF_MEMORY, or the kernel's OOM record
  for the runner's pid);
* ``hang``: the runner's watchdog saw no heartbeat within its limit and stopped the
  training (`candle_restart.task.watchdog`); resumable from the last checkpoint;
* ``error``: a training error (exit 1); ``bad_input``: exit 2; ``cancelled``:
  the scheduler says its user cancelled it.

The runner writes ``cause`` into its ``exit`` event when it knows better than
its exit status (the callback's walltime halt); the coordinator journals
``runner_lost`` with a cause; older journals without ``cause`` are read by
their ``status``.  Each end also carries ``ckpt``: a key of the newest
checkpoint at that time (`candle_restart.ckpt.info.commit_key`; None before the first).  An attempt made progress
when its key differs from the previous end's: N ends in a row without
progress trip the breaker (`Ledger.stalled`).  An end recorded before
``ckpt`` existed (`UNKNOWN`) is given the benefit of the doubt.  A
``retry_requested`` event starts all counts again.  A ``command`` without a
``ckpt-info.json`` records the fingerprint of its own files instead, or `UNKNOWN`
when its checkpoint directory shows nothing (`candle_restart.task.progress`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from candle_restart.records.journal import NO_CKPT_KEY, JournalEvent

UNKNOWN = NO_CKPT_KEY  # an end recorded without its checkpoint key (an older runner)
Cause = Literal["preempted", "timeout", "node_fail", "oom", "hang", "error", "bad_input", "cancelled"]
CAUSES: tuple[Cause, ...] = ("preempted", "timeout", "node_fail", "oom", "hang", "error", "bad_input", "cancelled")

_BY_STATUS = {"preempted": "preempted", "failed": "error", "bad_input": "bad_input"}
_BY_SCHEDULER = {
    "PREEMPTED": "preempted",
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",
    "NODE_FAIL": "node_fail",
    "BOOT_FAIL": "node_fail",
    "OUT_OF_MEMORY": "oom",
    "CANCELLED": "cancelled",
}


def cause_of_exit(event: JournalEvent) -> str | None:
    """The cause of a runner's ``exit`` event: its ``cause`` when valid, else from its ``status``;
    None for an attempt that completed the training (nothing went wrong)."""
    if event.status == "completed":
        return None
    if event.cause in CAUSES:
        return event.cause
    return _BY_STATUS.get(str(event.status), "error")


def cause_of_scheduler_state(state: str | None) -> str | None:
    """The cause a scheduler's final state names (``CANCELLED by 0`` -> cancelled), or None."""
    if not state:
        return None
    return _BY_SCHEDULER.get(state.split()[0].rstrip("+"))


@dataclass
class Ledger:
    """Attempt ends since the last retry request: counts per cause and the run without progress."""

    counts: Counter[str] = field(default_factory=Counter)
    stalled: int = 0  # attempt ends in a row that committed no newer checkpoint
    last_cause: str | None = None
    _last_key: str | None = None

    def end(self, cause: str, key: str | None) -> None:
        """Record one attempt's end with the checkpoint key it left."""
        self.counts[cause] += 1
        self.last_cause = cause
        if key == UNKNOWN:
            self.stalled = 0
            return
        if cause in ("preempted", "timeout", "node_fail", "oom", "hang", "error"):
            progressed = key is not None and key != self._last_key
            self.stalled = 0 if progressed else self.stalled + 1
        self._last_key = key if key is not None else self._last_key

    def reclassify_last(self, cause: str) -> None:
        """The scheduler knows better how the latest attempt ended (its TIMEOUT, OUT_OF_MEMORY)."""
        if self.last_cause is not None and self.last_cause != cause:
            self.counts[self.last_cause] -= 1
            self.counts[cause] += 1
            self.counts = +self.counts  # drop a cause counted down to zero
            self.last_cause = cause

    def completed(self) -> None:
        """An attempt that completed: the latest end has no cause."""
        self.last_cause = None
        self.stalled = 0

    def reset(self) -> None:
        """A retry request: budgets and the breaker start again (the last checkpoint key stays)."""
        self.counts.clear()
        self.stalled = 0
