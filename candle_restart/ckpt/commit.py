"""The commit protocol: how a checkpoint becomes visible, and how old ones go away.

Problem: a process can die (kill -9, node failure, full disk) at any instant,
and a reader must never load a half-written checkpoint.  Strategy: write into
a private directory and publish it with renames, which POSIX makes atomic.

Each writer has a work directory of its own (``work-<pid>-<tag>/``; ``work/``
by default), and holds the writer lease of the checkpoint directory
(`candle_restart.ckpt.lease`), so no two processes ever write one
checkpoint.  ``fence`` is the caller's lease check: it runs right before each
rename that publishes, moves a link or deletes (the link swaps included), and
raises if the lease was lost (a writer paused past its lease), so a writer that
lost its lease never publishes and never moves ``last`` back.

Steps of `commit` (after the caller filled ``work/`` between `begin` and it):

1. write ``ckpt-info.json`` last, fsync every file and ``work/`` itself;
2. if ``epochs/NNN`` already exists (a rolled-back run overwriting an epoch),
   rename it aside to ``epochs/.old-NNN-*``;
3. rename ``work/`` to ``epochs/NNN``, fsync ``epochs/`` and the root;
4. swap ``best`` (when this epoch is the best) and then ``last``: create a
   temporary relative symlink and rename it over the old one, fsync the root.
   With ``drop_best`` (a fresh start's first commit that is not a best) the
   ``best`` an earlier run left is removed instead, before ``last`` moves.

Invariants, at every instant:

* ``last`` and ``best`` name either their old target or the new, whole one
  (or, for ``best`` with ``drop_best``, nothing);
* nothing under ``epochs/<digits>`` is ever partly written: a directory gets
  that name only once every byte and its ``ckpt-info.json`` are durable;
* ``work*/`` is never read by restart; `begin` discards leftovers of a crash
  (its caller holds the writer lease, so every other work directory belongs
  to a writer that died or lost its lease);
* no rename that publishes or deletes happens after ``fence`` fails.

Deletion (`remove_epoch`) is the mirror image: rename ``epochs/NNN`` to
``epochs/.del-NNN-*`` first, then delete, so a crash mid-delete never leaves
a truncated directory under a checkpoint name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from candle_restart.ckpt import fsio
from candle_restart.ckpt.layout import INFO_FILE, CkptLayout, epoch_name
from candle_restart.errors import CkptError, CommitError
from candle_restart.records.ckptinfo import CkptInfo

_DEBRIS_PREFIXES = (".old-", ".del-")
Fence = Callable[[], None]


def _unfenced() -> None:
    """The fence of a caller that holds no lease (tests, tools): never raises."""


def _unique_suffix() -> str:
    return f"{os.getpid()}-{time.monotonic_ns()}"


def begin(layout: CkptLayout, work: Path | None = None) -> Path:
    """Create an empty work directory (``work``, default ``work/``) and return it.

    Discards debris of interrupted writes first: any ``work*`` directory
    (this writer's or a dead one's) and ``epochs/.old-*``/``.del-*``.
    """
    work = layout.work if work is None else work
    if layout.epochs.is_symlink():
        raise CommitError(str(layout.epochs), None, "is a symlink; refusing to write or delete through it")
    try:
        layout.epochs.mkdir(parents=True, exist_ok=True)
        for old in layout.work_dirs():
            if old.is_symlink() or not old.is_dir():
                old.unlink()
            else:
                shutil.rmtree(old)
        _recover_debris(layout)
        work.mkdir()
    except OSError as exc:
        raise CommitError(str(layout.root), None, f"cannot prepare {work.name}/: {exc}") from exc
    return work


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


def commit(
    layout: CkptLayout,
    epoch: int,
    info: CkptInfo,
    *,
    best: bool,
    drop_best: bool = False,
    work: Path | None = None,
    fence: Fence = _unfenced,
) -> Path:
    """Publish ``work`` (default ``work/``) as ``epochs/NNN`` and point ``last`` (and ``best``) at it.

    ``info`` is written as ``ckpt-info.json``.  On any
    error, a failed ``fence`` included, `CommitError` is raised and
    ``last``/``best`` still name their old targets.
    """
    work = layout.work if work is None else work
    target = layout.epoch_dir(epoch)
    aside: Path | None = None
    try:
        fsio.write_new_file(work / INFO_FILE, info.to_json())
        fsio.fsync_tree(work)
        if target.exists():
            aside = layout.epochs / f".old-{epoch_name(epoch)}-{_unique_suffix()}"
            fence()
            os.rename(target, aside)
        fence()
        os.rename(work, target)
        fsio.fsync_path(layout.epochs)
        fsio.fsync_path(layout.root)
        if best:
            fsio.swap_symlink(layout.link_target(epoch), layout.best, before_rename=fence)
        elif drop_best and layout.best.is_symlink():
            fence()
            os.unlink(layout.best)
            fsio.fsync_path(layout.root)
        fsio.swap_symlink(layout.link_target(epoch), layout.last, before_rename=fence)
    except (OSError, ValueError, CkptError) as exc:
        raise CommitError(str(target), None, f"checkpoint commit failed: {exc}") from exc
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return target


def remove_epoch(layout: CkptLayout, epoch: int, fence: Fence = _unfenced) -> bool:
    """Delete ``epochs/NNN`` crash-safely; return False if it was not there.

    ``fence`` runs first: a writer that lost its lease deletes nothing.

    Refuses (returns False) for anything that is a symlink or does not resolve
    to a direct child of ``epochs/``: clean-up never leaves its directory.
    """
    path = layout.epoch_dir(epoch)
    if layout.epochs.is_symlink() or path.is_symlink() or not path.is_dir() or not layout.inside_epochs(path):
        return False
    fence()
    doomed = layout.epochs / f".del-{epoch_name(epoch)}-{_unique_suffix()}"
    os.rename(path, doomed)
    with contextlib.suppress(OSError):
        fsio.fsync_path(layout.epochs)
    shutil.rmtree(doomed, ignore_errors=True)
    return True
