"""The commit protocol: how a checkpoint becomes visible, and how old ones go away.

Problem: a process can die (kill -9, node failure, full disk) at any instant,
and a reader must never load a half-written checkpoint.  Strategy: write into
a private directory and publish it with renames, which POSIX makes atomic.

Each writer has a work directory of its own (``work-<pid>-<tag>/``; ``work/``
by default), and holds the writer lease of the checkpoint directory
(`candle_restart.runtime.lease`), so no two processes ever write one
checkpoint.  ``fence`` is the caller's lease check: it runs right before each
rename that publishes, moves a link or deletes (the link swaps included), and
before `begin` deletes or recovers anything; it raises if the lease was lost (a
writer paused past its lease), so a writer that lost its lease never publishes,
never moves ``last`` back, and never deletes what the new holder is writing.

`begin` empties the writer's own work directory and discards what was listed
*before* its fence passed: the other ``work*`` directories and the debris of
``epochs/``.  The caller held the lease continuously from before the listing to
the fence, so each of those belongs to a writer that died or lost its lease;
even a writer paused right after its fence deletes nothing that a later holder
created.  `writing` is `begin` plus the cleanup of every failure path: a write
or commit that fails (a full disk, a lost lease) discards its own work directory.

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
* ``work*/`` is never read by restart; a writer deletes only its own work
  directory, and others (and ``epochs/`` debris) only when they were listed
  before a fence that passed: never a live holder's write in progress;
* a failed write or commit leaves no work directory of its own behind (`writing`);
* no rename or deletion that publishes, recovers or removes anything happens
  after ``fence`` fails.

Deletion (`remove_epoch`) is the mirror image: rename ``epochs/NNN`` to
``epochs/.del-NNN-*`` first, then delete, so a crash mid-delete never leaves
a truncated directory under a checkpoint name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from candle_restart.ckpt.layout import INFO_FILE, CkptLayout, epoch_name
from candle_restart.errors import CkptError, CommitError
from candle_restart.records.ckptinfo import CkptInfo
from candle_restart.runtime import fsio

_DEBRIS_PREFIXES = (".old-", ".del-")
Fence = Callable[[], None]


def _unfenced() -> None:
    """The fence of a caller that holds no lease (tests, tools): never raises."""


def _unique_suffix() -> str:
    return f"{os.getpid()}-{time.monotonic_ns()}"


def begin(layout: CkptLayout, work: Path | None = None, fence: Fence = _unfenced) -> Path:
    """Create an empty work directory (``work``, default ``work/``) and return it.

    Discards what interrupted writes left, and only what is provably dead: the
    ``work*`` directories and ``epochs/.old-*``/``.del-*`` that were there *before*
    ``fence`` passed.  Its caller held the lease from before they were listed
    until the fence, so nobody else held it in between, and each of them belongs
    to a writer that died or lost its lease (or to this writer's own earlier
    write).  A writer that lost its lease (paused past it) fails the fence
    before it deletes or recovers anything; and one paused after the fence
    still deletes only what it listed, never the work of a holder that came
    after it.  ``work`` itself is this writer's own and is always emptied.
    """
    work = layout.work if work is None else work
    if layout.epochs.is_symlink():
        raise CommitError(str(layout.epochs), None, "is a symlink; refusing to write or delete through it")
    try:
        layout.epochs.mkdir(parents=True, exist_ok=True)
        dead_work = [w for w in layout.work_dirs() if w != work]
        debris = [n for n in sorted(os.listdir(layout.epochs)) if n.startswith(_DEBRIS_PREFIXES)]
        fence()
        for old in [work, *dead_work]:
            discard(old)
        _recover_debris(layout, debris)
        work.mkdir()
    except OSError as exc:
        raise CommitError(str(layout.root), None, f"cannot prepare {work.name}/: {exc}") from exc
    except CkptError as exc:
        raise CommitError(str(layout.root), None, f"not preparing {work.name}/: {exc}") from exc
    return work


@contextlib.contextmanager
def writing(layout: CkptLayout, work: Path, fence: Fence = _unfenced) -> Iterator[Path]:
    """`begin` ``work``, and discard it again when the block fails: a failed write or commit
    (a full disk, a lost lease, any exception) leaves no partial copy holding space."""
    path = begin(layout, work, fence)
    try:
        yield path
    except BaseException:
        discard(path)  # published already (a failure after the rename): nothing is there
        raise


def why_failed(exc: BaseException, fence: Fence) -> str:
    """What to say of a write or commit that failed with ``exc``: for a missing file, the lost lease
    where ``fence`` now fails (a writer paused past its lease finds its work directory removed by
    the new holder: the missing file is not the cause), else ``exc`` itself."""
    if isinstance(exc, FileNotFoundError):  # a failing mount (EIO) is its own cause: the fence would read it too
        try:
            fence()
        except CkptError as lost:
            return str(lost)
    return str(exc)


def discard(path: Path) -> None:
    """Remove the work directory ``path`` (a link or file there: just the name); gone already is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _recover_debris(layout: CkptLayout, names: list[str]) -> None:
    """Finish what a crash interrupted (``names``: debris in ``epochs/`` listed before the fence):
    an epoch set aside for replacement whose replacement never arrived goes back under its
    name; other debris goes.  Debris another process already recovered is skipped."""
    for name in names:
        path = layout.epochs / name
        if name.startswith(".old-"):
            original = layout.epochs / name.split("-")[1]
            if not original.exists():
                with contextlib.suppress(FileNotFoundError):  # recovered already by another
                    os.rename(path, original)
                    fsio.fsync_path(layout.epochs)
                continue
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
        fsio.write_new_file(work / INFO_FILE, info.to_bytes())
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
        raise CommitError(str(target), None, f"checkpoint commit failed: {why_failed(exc, fence)}") from exc
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
    try:
        os.rename(path, doomed)
    except FileNotFoundError:  # gone meanwhile: a writer paused after its fence, and the next one took it
        return False
    with contextlib.suppress(OSError):
        fsio.fsync_path(layout.epochs)
    shutil.rmtree(doomed, ignore_errors=True)
    return True
