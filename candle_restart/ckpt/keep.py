"""Keep policies: which committed checkpoints survive a clean-up.

`surviving_epochs` is a pure function of the epochs on disk, so every policy
is tested against a table.  Whatever the policy, the newest epoch and every
epoch in ``protect`` (the targets of ``last`` and ``best``) survive.

* ``all``: keep everything.
* ``linear``: keep the ``limit`` newest epochs.
* ``exponential``: keep the newest epoch and, for k = 0, 1, 2, ..., the
  oldest epoch whose age (newest - epoch) lies in [2**k, 2**(k+1)): kept
  checkpoints thin out geometrically into the past (10 epochs -> 10, 9, 7, 3,
  1), and the rule is stable when applied after every epoch (64 epochs,
  cleaned each time -> 64, 63, 61, 57, 49, 33, 1); at most ``limit`` of them,
  nearest first.
"""

from __future__ import annotations

from collections.abc import Iterable


def _exponential(epochs: list[int], limit: int) -> list[int]:
    newest = epochs[-1]
    chosen = [newest]
    low = 1
    while len(chosen) < limit and newest - epochs[0] >= low:
        band = [e for e in epochs if low <= newest - e < 2 * low]
        if band:
            chosen.append(min(band))
        low *= 2
    return chosen


def surviving_epochs(epochs: Iterable[int], mode: str, limit: int, protect: Iterable[int] = ()) -> set[int]:
    """The subset of ``epochs`` that ``mode`` keeps, plus ``protect`` and the newest epoch."""
    ordered = sorted(set(epochs))
    if not ordered:
        return set()
    protected = {e for e in protect if e in ordered}
    if mode == "all":
        kept = set(ordered)
    elif mode == "linear":
        kept = set(ordered[-limit:])
    elif mode == "exponential":
        kept = set(_exponential(ordered, limit))
    else:
        raise ValueError(f"unknown keep mode {mode!r}")
    return kept | protected | {ordered[-1]}
