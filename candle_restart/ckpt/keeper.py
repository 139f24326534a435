"""Applying a keep policy to a checkpoint directory: CANDLE's ``clean``, ``keep``, ``delete``, ``symlink``.

Which old checkpoints survive is decided by `candle_restart.ckpt.keep`; a
`Keeper` applies it with CANDLE's log lines.  The caller says which epochs are
protected (the checkpoint just written, and, while ``ckpt_save_best`` is on,
the best epoch of this run or of the checkpoint it restarted from; a ``best``
link an earlier run left pins nothing).  Deletion goes through
`candle_restart.ckpt.commit.remove_epoch` (crash-safe, never outside
``epochs/``, after the writer lease's fence).

A `Keeper` holds only its settings: `clean` may run in the commit thread, and
it returns the epochs it deleted for the training thread to record.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path

from candle_restart.ckpt import commit, keep
from candle_restart.ckpt.commit import Fence
from candle_restart.ckpt.layout import CkptLayout
from candle_restart.ckpt.log import Logs


class Keeper:
    """The keep policy of one checkpoint directory (see the module docstring)."""

    def __init__(
        self,
        layout: CkptLayout,
        mode: str,
        limit: int,
        logs: Logs,
        fence: Fence,
        relpath: Callable[[Path], Path],
    ) -> None:
        self.layout = layout
        self.mode = mode
        self.limit = limit
        self._logs = logs
        self._fence = fence
        self._relpath = relpath

    def clean(self, epoch_now: int, protect: Collection[int]) -> list[int]:
        """Delete the checkpoints the policy drops; never ``epoch_now`` nor ``protect``.

        Returns the epochs deleted.  Only ``epochs/<digits>`` directories are considered.
        """
        on_disk = self.layout.list_epochs()
        survivors = keep.surviving_epochs(on_disk, self.mode, self.limit, {epoch_now, *protect})
        deleted = [epoch for epoch in on_disk if epoch not in survivors]
        for epoch in deleted:
            self.delete(epoch)
        return deleted

    def keep(self, epoch: int, epoch_now: int, protect: Collection[int]) -> bool:
        """CANDLE's per-epoch question: is ``epoch`` kept when ``epoch_now`` was just written?"""
        on_disk = set(self.layout.list_epochs()) | {epoch, epoch_now}
        return epoch in keep.surviving_epochs(on_disk, self.mode, self.limit, {epoch_now, *protect})

    def delete(self, epoch: int) -> bool:
        """Remove ``epochs/NNN`` (crash-safely, never outside ``epochs/``); False if it was not there."""
        if commit.remove_epoch(self.layout, epoch, self._fence):
            self._logs.debug(f"removing: '{self._relpath(self.layout.epoch_dir(epoch))}'")
            return True
        self._logs.info(f"checkpoint for epoch={epoch} disappeared!")
        return False

    def symlink(self, src: Path | str, dst: Path | str) -> None:
        """Point link ``dst`` at ``src`` atomically, relative to ``dst``'s directory."""
        from candle_restart.runtime.fsio import swap_symlink

        dst = Path(dst)
        target = os.path.relpath(os.path.abspath(src), os.path.abspath(dst.parent))
        self._logs.debug(f"linking: '{self._relpath(dst)}' -> '{target}'")
        swap_symlink(target, dst)
