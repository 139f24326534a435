"""The writer lease of a checkpoint directory, as the engine holds it: taken at the first save or
restart, fencing every commit, given back at the end.

One lease covers both tiers of a two-tier run (it is the shared tier's); ``on_hold``
binds the node-local tier when the lease is taken (`candle_restart.ckpt.tierbind`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from candle_restart.ckpt.layout import CkptLayout
from candle_restart.errors import CommitError
from candle_restart.runtime.lease import Lease, LeaseLost, drop_shared, hold_shared


class WriterLease:
    """The writer lease of one checkpoint directory, held from the first save or restart until released."""

    def __init__(self, layout: CkptLayout, log: Callable[[str], None]) -> None:
        self.layout = layout
        self._log = log
        self._lease: Lease | None = None
        self._drop: weakref.finalize | None = None
        # Run each time the lease is taken, before it is used (two tiers: bind the node-local tier).
        self.on_hold: Callable[[], object] | None = None

    def hold(self) -> Lease:
        """Hold the lease; `LeaseBusy` (naming the holder) when another live process writes here.

        Once taken, ``on_hold`` runs; if it raises, the lease is given back and the error raised."""
        if self._lease is None:
            what = f"the checkpoint writer of {self.layout.root}"
            self._lease = hold_shared(self.layout.writer_lock, what, log=self._log)
            self._drop = weakref.finalize(self, drop_shared, self._lease)
            if self.on_hold is not None:
                try:
                    self.on_hold()
                except BaseException:
                    self.release()
                    raise
        return self._lease

    def release(self) -> None:
        if self._drop is not None:
            self._drop()
        self._lease, self._drop = None, None

    def fence(self) -> None:
        """The commit protocol's fence: raise unless the lease is still this process's (any thread)."""
        lease = self._lease
        if lease is None:
            raise CommitError(str(self.layout.root), None, "the writer lease is not held; not committing")
        lease.check()

    def held_after(self, failure: BaseException, what: str) -> None:
        """Return if the lease is still held after ``failure``; else raise `CommitError` naming the
        lost lease (``what``: what was not committed), as the commit protocol's fence does.

        A write that failed because its writer was paused past its lease (its work directory then
        belongs to the dead, and the new holder removes it) is a lost lease, not a failing tier."""
        try:
            self.fence()
        except LeaseLost as lost:
            raise CommitError(str(self.layout.root), None, f"{what} not committed: {lost}") from failure
