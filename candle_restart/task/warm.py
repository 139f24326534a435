"""A task's warm start from its parent: ``task.json``'s ``parent``, done once before training.

`warm_start` runs in the runner before each attempt's training, holding the task's run lease:

* no ``parent``: nothing;
* ``origin.json`` present: the copy was done (by an earlier attempt): nothing;
* the task already has a committed checkpoint: the copy was committed and the attempt died
  before ``origin.json`` was written; it is written from the ``origin`` its checkpoints record;
* else the parent's newest verified checkpoint is copied in through the commit protocol
  (`candle_restart.ckpt.warmstart.copy_checkpoint`), fenced by the task's checkpoint writer
  lease, then ``origin.json`` is written (`candle_restart.records.origin`).

`resolve_parent` is also what the sweep checks before it writes anything: a parent that is not
a task directory, a chain of parents that comes back to the task (a cycle), a parent without a
checkpoint that verifies: each a `TaskError` naming the ``task.json`` (or YAML) and key ``parent``.
A transient failure of the copy (an I/O error, a lost lease) is `WarmStartError`, not bad input:
the attempt fails and is retried.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from candle_restart.ckpt.info import commit_key
from candle_restart.ckpt.layout import CkptLayout
from candle_restart.ckpt.restore import Found, verify_checkpoint
from candle_restart.ckpt.warmstart import copy_checkpoint, newest_verified
from candle_restart.errors import CheckpointIOError, CkptError, CommitError, CorruptCheckpointError
from candle_restart.records.origin import ORIGIN_FILE, Origin, read_origin
from candle_restart.records.taskspec import TaskError
from candle_restart.runtime import fsio
from candle_restart.runtime.envvars import pause_point
from candle_restart.runtime.lease import drop_shared, hold_shared
from candle_restart.task.taskdir import TaskDir

Log = Callable[[str], None]
MAX_DEPTH = 1000  # parents followed before a chain is called a cycle


class WarmStartError(RuntimeError):
    """The copy failed for a reason that may pass (I/O, a lost lease): the attempt is retried."""


def parent_dir(run_root: Path, parent: str) -> TaskDir:
    """The task directory ``parent`` names: a sibling in ``run_root``, or an absolute path."""
    return TaskDir(Path(parent) if Path(parent).is_absolute() else Path(run_root) / parent)


def resolve_parent(
    child: Path, parent: str, where: str, key: str = "parent", *, need_checkpoint: bool = True
) -> tuple[TaskDir, Found | None]:
    """The parent task of the task at ``child`` (which may not exist yet) and its newest verified
    checkpoint; `TaskError` naming ``where`` and ``key`` when it does not exist, when its chain of
    parents comes back to ``child``, or (``need_checkpoint``) when no checkpoint of it verifies."""
    task = parent_dir(child.parent, parent)
    if not task.task_file.is_file():
        raise TaskError(where, key, f"parent {parent!r} is not a task directory (no {task.path}/task.json)")
    seen = {Path(child).resolve()}
    walk: TaskDir | None = task
    for _ in range(MAX_DEPTH):
        if walk is None:
            break
        here = walk.path.resolve()
        if here in seen:
            raise TaskError(where, key, f"parent {parent!r} leads back to {here.name}: a cycle of parents")
        seen.add(here)
        spec = walk.load_spec()
        walk = None if spec.parent is None else parent_dir(here.parent, spec.parent)
    else:
        raise TaskError(where, key, f"parent {parent!r}: a chain of over {MAX_DEPTH} parents")
    if not need_checkpoint:
        return task, None
    try:
        found = newest_verified(task.ckpts)
    except CheckpointIOError as exc:
        raise WarmStartError(f"{where}: {key}: the checkpoints of {parent!r} cannot be read now: {exc}") from None
    if found is None:
        raise TaskError(where, key, f"parent {parent!r} has no checkpoint that verifies in {task.ckpts}")
    return task, found


def _recorded_origin(layout: CkptLayout) -> Origin | None:
    """The ``origin`` of the oldest committed checkpoint that records one (None: none does)."""
    for epoch in layout.list_epochs():
        try:
            info = verify_checkpoint(layout.epoch_dir(epoch), False)
        except CkptError:
            continue
        if info.origin is not None:
            return info.origin
    return None


def warm_start(task: TaskDir, parent: str | None, log: Log) -> Origin | None:
    """Copy the parent's newest verified checkpoint in, once (see the module docstring); the origin."""
    if parent is None:
        return None
    done = read_origin(task.path)
    if done is not None:
        return done
    layout = CkptLayout.at(task.ckpts)
    if layout.list_epochs():  # committed, then the attempt died before origin.json
        origin = _recorded_origin(layout)
        if origin is not None:
            fsio.atomic_write_bytes(task.path / ORIGIN_FILE, origin.to_bytes())
        return origin
    source_task, found = resolve_parent(task.path, parent, str(task.task_file))
    assert found is not None
    info = found.info
    origin = Origin(
        parent=parent,
        parent_path=str(source_task.path),
        epoch=info.epoch,
        checksum=info.checksum,
        key=commit_key(info),
        time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        position=None if info.position is None else (info.position.epoch, info.position.batch),
    )
    try:
        lease = hold_shared(layout.writer_lock, f"the checkpoint writer of {layout.root}", log=log)
    except CkptError as exc:
        raise WarmStartError(f"{task.task_id}: warm start: {exc}") from None
    try:
        path = copy_checkpoint(found, layout, origin, lease.check)
    except (CommitError, CheckpointIOError, CorruptCheckpointError, OSError) as exc:  # retried afresh
        raise WarmStartError(f"{task.task_id}: warm start from {parent} failed: {exc}") from None
    finally:
        drop_shared(lease)
    pause_point("warm-committed")  # killed here: the copy is whole; the next attempt writes origin.json
    fsio.atomic_write_bytes(task.path / ORIGIN_FILE, origin.to_bytes())
    log(f"{task.task_id}: warm start: copied {parent} epochs/{found.path.name} into {path} (verified)")
    return origin
