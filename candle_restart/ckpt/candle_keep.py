"""CANDLE's keep-policy methods (``clean``, ``keep``, ``delete``, ``symlink``), as a mixin.

Which old checkpoints survive is decided by `candle_restart.ckpt.keep`; these
methods apply it to the checkpoint directory with CANDLE's names and log
lines.  The checkpoint just written is never deleted, nor, while
``ckpt_save_best`` is on, the best epoch of this run (or of the checkpoint it
restarted from), as CANDLE's ``keep``; a ``best`` link an earlier run left pins
nothing.  Deletion goes through `candle_restart.ckpt.commit.remove_epoch`
(crash-safe, never outside ``epochs/``).  ``clean`` may run in the commit thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from candle_restart.ckpt import commit, keep
from candle_restart.ckpt.layout import CkptLayout


class CandleKeepMethods:
    """Mixed into `candle_restart.ckpt.candle.CandleCkpt`; needs its layout, settings, epochs and logging."""

    layout: CkptLayout
    keep_mode: str
    keep_limit: int
    epoch_best: int
    epochs: list[int]
    save_best: bool
    links_own: bool

    if TYPE_CHECKING:  # provided by CandleCkpt

        def debug(self, message: str) -> None: ...

        def info(self, message: str) -> None: ...

        def relpath(self, p: Path | str) -> Path: ...

        def _fence(self) -> None: ...

    def clean(self, epoch_now: int) -> tuple[int, int]:
        """Delete checkpoints the keep policy drops; never ``epoch_now`` or this run's best (see module doc).

        Returns (kept, deleted).  Only ``epochs/<digits>`` directories are considered.
        """
        on_disk = self.layout.list_epochs()
        survivors = keep.surviving_epochs(
            on_disk, self.keep_mode, self.keep_limit, self._protected(epoch_now)
        )
        deleted = 0
        for epoch in on_disk:
            if epoch not in survivors:
                self.delete(epoch)
                deleted += 1
        return len(on_disk) - deleted, deleted

    def _protected(self, epoch_now: int) -> set[int]:
        """Epochs no keep policy may delete: ``epoch_now``, ``last`` once it is this run's, and
        this run's best epoch while ``ckpt_save_best`` is on (CANDLE's ``keep``)."""
        protect = {epoch_now}
        if self.save_best and self.epoch_best:
            protect.add(self.epoch_best)
        if self.links_own:
            linked = self.layout.linked_epoch(self.layout.last)
            if linked is not None:
                protect.add(linked)
        return protect

    def keep(self, epoch: int, epoch_now: int, kept: int) -> bool:
        """CANDLE's per-epoch question: keep ``epoch`` when ``kept`` newer ones are already kept?"""
        on_disk = set(self.layout.list_epochs()) | {epoch, epoch_now}
        return epoch in keep.surviving_epochs(
            on_disk, self.keep_mode, self.keep_limit, self._protected(epoch_now)
        )

    def delete(self, epoch: int) -> None:
        """Remove ``epochs/NNN`` (crash-safely, and never outside ``epochs/``)."""
        if commit.remove_epoch(self.layout, epoch, self._fence):
            self.debug(f"removing: '{self.relpath(self.layout.epoch_dir(epoch))}'")
        else:
            self.info(f"checkpoint for epoch={epoch} disappeared!")
        if epoch in self.epochs:
            self.epochs.remove(epoch)

    def symlink(self, src: Path | str, dst: Path | str) -> None:
        """Point link ``dst`` at ``src`` atomically, relative to ``dst``'s directory."""
        from candle_restart.ckpt.fsio import swap_symlink

        dst = Path(dst)
        target = os.path.relpath(os.path.abspath(src), os.path.abspath(dst.parent))
        self.debug(f"linking: '{self.relpath(dst)}' -> '{target}'")
        swap_symlink(target, dst)
