"""Keep policies: which committed checkpoints survive a clean-up.

`surviving_epochs` is a pure function of the epochs on disk, so every policy
is tested against a table.  Whatever the policy, the newest epoch and every
epoch in ``protect`` (the targets of ``last`` and ``best``) survive.

* ``all``: keep everything.
* ``linear``: keep the ``limit`` newest epochs.
* ``exponential``: keep the newest epoch, and for k = 0, 1, 2, ... the newest
  epoch at least 2**k epochs older than it, so kept checkpoints thin out
  geometrically into the past (10 epochs -> 10, 9, 8, 6, 2); at most ``limit``
  of them, nearest first.
"""

from __future__ import annotations

from collections.abc import Iterable


def _exponential(epochs: list[int], limit: int) -> list[int]:
    newest = epochs[-1]
    chosen = [newest]
    distance = 1
    while len(chosen) < limit:
        older = [e for e in epochs if e <= newest - distance and e not in chosen]
        if not older:
            break
        chosen.append(max(older))
        distance *= 2
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
