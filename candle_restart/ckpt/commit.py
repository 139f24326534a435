"""The commit protocol: how a checkpoint becomes visible, and how old ones go away.

Problem: a process can die (kill -9, node failure, full disk) at any instant,
and a reader must never load a half-written checkpoint.  Strategy: write into
a private directory and publish it with renames, which POSIX makes atomic.

Steps of `commit` (after the caller filled ``work/`` between `begin` and it):

1. write ``ckpt-info.json`` last, fsync every file and ``work/`` itself;
2. if ``epochs/NNN`` already exists (a rolled-back run overwriting an epoch),
   rename it aside to ``epochs/.old-NNN-*``;
3. rename ``work/`` to ``epochs/NNN``, fsync ``epochs/`` and the root;
4. swap ``best`` (when this epoch is the best) and then ``last``: create a
   temporary relative symlink and rename it over the old one, fsync the root.

Invariants, at every instant:

* ``last`` and ``best`` name either their old target or the new, whole one;
* nothing under ``epochs/<digits>`` is ever partly written: a directory gets
  that name only once every byte and its ``ckpt-info.json`` are durable;
* ``work/`` is never read by restart; `begin` discards leftovers of a crash.

Deletion (`remove_epoch`) is the mirror image: rename ``epochs/NNN`` to
``epochs/.del-NNN-*`` first, then delete, so a crash mid-delete never leaves
a truncated directory under a checkpoint name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from candle_restart.ckpt import fsio
from candle_restart.ckpt.errors import CommitError
from candle_restart.ckpt.info import dumps
from candle_restart.ckpt.layout import INFO_FILE, CkptLayout, epoch_name

_DEBRIS_PREFIXES = (".old-", ".del-")


def _unique_suffix() -> str:
    return f"{os.getpid()}-{time.monotonic_ns()}"


def begin(layout: CkptLayout) -> Path:
    """Create an empty ``work/`` (discarding any debris of an interrupted write) and return it."""
    if layout.epochs.is_symlink():
        raise CommitError(str(layout.epochs), None, "is a symlink; refusing to write or delete through it")
    try:
        layout.epochs.mkdir(parents=True, exist_ok=True)
        if layout.work.exists() or layout.work.is_symlink():
            if layout.work.is_symlink() or not layout.work.is_dir():
                layout.work.unlink()
            else:
                shutil.rmtree(layout.work)
        _recover_debris(layout)
        layout.work.mkdir()
    except OSError as exc:
        raise CommitError(str(layout.root), None, f"cannot prepare work/: {exc}") from exc
    return layout.work


def _recover_debris(layout: CkptLayout) -> None:
    """Finish what a crash interrupted: an epoch set aside for replacement whose
    replacement never arrived goes back under its name; other debris goes."""
    for name in sorted(os.listdir(layout.epochs)):
        path = layout.epochs / name
        if name.startswith(".old-"):
            original = layout.epochs / name.split("-")[1]
            if not original.exists():
                os.rename(path, original)
                fsio.fsync_path(layout.epochs)
                continue
        if name.startswith(_DEBRIS_PREFIXES):
            shutil.rmtree(path, ignore_errors=True)


def commit(layout: CkptLayout, epoch: int, info: dict[str, Any], *, best: bool) -> Path:
    """Publish ``work/`` as ``epochs/NNN`` and point ``last`` (and ``best``) at it.

    ``info`` is written as ``ckpt-info.json``; it must be strict JSON.  On any
    error `CommitError` is raised and ``last``/``best`` still name their old
    targets.
    """
    target = layout.epoch_dir(epoch)
    aside: Path | None = None
    try:
        fsio.write_new_file(layout.work / INFO_FILE, dumps(info))
        fsio.fsync_tree(layout.work)
        if target.exists():
            aside = layout.epochs / f".old-{epoch_name(epoch)}-{_unique_suffix()}"
            os.rename(target, aside)
        os.rename(layout.work, target)
        fsio.fsync_path(layout.epochs)
        fsio.fsync_path(layout.root)
        if best:
            fsio.swap_symlink(layout.link_target(epoch), layout.best)
        fsio.swap_symlink(layout.link_target(epoch), layout.last)
    except (OSError, ValueError) as exc:
        raise CommitError(str(target), None, f"checkpoint commit failed: {exc}") from exc
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return target


def remove_epoch(layout: CkptLayout, epoch: int) -> bool:
    """Delete ``epochs/NNN`` crash-safely; return False if it was not there.

    Refuses (returns False) for anything that is a symlink or does not resolve
    to a direct child of ``epochs/``: clean-up never leaves its directory.
    """
    path = layout.epoch_dir(epoch)
    if layout.epochs.is_symlink() or path.is_symlink() or not path.is_dir() or not layout.inside_epochs(path):
        return False
    doomed = layout.epochs / f".del-{epoch_name(epoch)}-{_unique_suffix()}"
    os.rename(path, doomed)
    with contextlib.suppress(OSError):
        fsio.fsync_path(layout.epochs)
    shutil.rmtree(doomed, ignore_errors=True)
    return True
