"""Where things live inside a checkpoint directory (``ckpt_directory``).

::

    <ckpt_directory>/
      ckpt.log          the callback's log (CANDLE's lines, verbatim)
      work*/            checkpoints being written (work/ or one work-<pid>-<tag>/ per
                        writer); never read by restart
      .writer.lock      the writer lease (candle_restart.runtime.lease); .holder says who
      epochs/NNN/       one committed checkpoint (NNN = 1-based epoch, 3+ digits)
      last -> epochs/NNN   relative symlink to the newest committed checkpoint
      best -> epochs/NNN   relative symlink to the best one by the tracked metric

CANDLE's callbacks put these under ``<ckpt_directory>/ckpts/``; the older
API here does too (`candle_root`), while `CandleCkptKeras` uses
``ckpt_directory`` itself (``output_dir/ckpts`` by default).  Restart looks in
both places (`restart_roots`).

Only names that match ``epochs/<digits>`` are checkpoints; anything else in
``epochs/`` (a set-aside ``NNN.corrupt-*``, a ``.old-*`` being replaced) is
ignored by every reader and never touched by the keep policy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from candle_restart.records import torchstate

INFO_FILE = "ckpt-info.json"
TRAIN_STATE_FILE = "train_state.npz"  # a backend's exact-resume state (the Keras one's npz)
TORCH_STATE_FILE = torchstate.STATE_FILE  # the PyTorch one's JSON record
STATE_FILES = (TRAIN_STATE_FILE, TORCH_STATE_FILE)  # ckpt-info.json's state_file: the first present
LOG_FILE = "ckpt.log"
_EPOCH_NAME = re.compile(r"^[0-9]{3,}$")


CANDLE_SUBDIRECTORY = "ckpts"


def candle_root(directory: str | os.PathLike[str]) -> Path:
    """The checkpoint root CANDLE's callbacks used for ``ckpt_directory``: ``<directory>/ckpts``.

    A directory already named ``ckpts`` (the task runner's, the default
    ``output_dir/ckpts``) is taken as the root itself, not nested again.
    """
    path = Path(os.path.abspath(directory))
    return path if path.name == CANDLE_SUBDIRECTORY else path / CANDLE_SUBDIRECTORY


def restart_roots(directory: str | os.PathLike[str], root: Path) -> list[Path]:
    """Where a restart looks, in order: ``root`` (where this run writes), then ``directory``
    and ``directory/ckpts``, whichever of them ``root`` is not (checkpoints written the other way)."""
    path = Path(os.path.abspath(directory))
    return list(dict.fromkeys([Path(root), path, path / CANDLE_SUBDIRECTORY]))


def epoch_name(epoch: int) -> str:
    """The directory name of ``epoch`` (1-based), zero-padded to three digits like CANDLE's."""
    return f"{int(epoch):03d}"


def parse_epoch_name(name: str) -> int | None:
    """The epoch a directory name stands for, or None if it is not a checkpoint name."""
    return int(name) if _EPOCH_NAME.match(name) else None


@dataclass(frozen=True)
class CkptLayout:
    """The paths of one checkpoint directory; creates nothing by itself."""

    root: Path

    @classmethod
    def at(cls, directory: str | os.PathLike[str]) -> CkptLayout:
        return cls(Path(os.path.abspath(directory)))

    @property
    def work(self) -> Path:
        return self.root / "work"

    def work_dir(self, tag: str) -> Path:
        """A writer's own work directory, ``work-<tag>``."""
        return self.root / f"work-{tag}"

    def work_dirs(self) -> list[Path]:
        """Every work directory present (``work`` and ``work-*``), live writers' or debris."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return [self.root / n for n in sorted(names) if n == "work" or n.startswith("work-")]

    @property
    def writer_lock(self) -> Path:
        """The writer lease's marker: one writer per checkpoint directory."""
        return self.root / ".writer.lock"

    @property
    def epochs(self) -> Path:
        return self.root / "epochs"

    @property
    def last(self) -> Path:
        return self.root / "last"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE

    def epoch_dir(self, epoch: int) -> Path:
        return self.epochs / epoch_name(epoch)

    def link_target(self, epoch: int) -> str:
        """The relative target a ``last``/``best`` link gets, so a moved run dir still works."""
        return os.path.join("epochs", epoch_name(epoch))

    def list_epochs(self) -> list[int]:
        """Epoch numbers of the directories in ``epochs/`` that carry a checkpoint name, ascending."""
        try:
            names = os.listdir(self.epochs)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            epoch = parse_epoch_name(name)
            if epoch is not None and (self.epochs / name).is_dir() and not (self.epochs / name).is_symlink():
                found.append(epoch)
        return sorted(found)

    def linked_epoch(self, link: Path) -> int | None:
        """The epoch a ``last``/``best`` link names, read from the link text alone.

        Accepts our relative ``epochs/NNN`` links and CANDLE's absolute ones
        (by their last two components); returns None for anything else.
        """
        try:
            target = os.readlink(link)
        except OSError:
            return None
        parts = [p for p in target.split("/") if p and p != "."]  # as pathlib parts them, cheaper
        if len(parts) < 2 or parts[-2] != "epochs":
            return None
        return parse_epoch_name(parts[-1])

    def inside_epochs(self, path: Path) -> bool:
        """True if ``path`` is a direct child of ``epochs/`` once every link is resolved."""
        try:
            return Path(os.path.realpath(path)).parent == Path(os.path.realpath(self.epochs))
        except OSError:
            return False
