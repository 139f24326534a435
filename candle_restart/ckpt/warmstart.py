"""A warm start: another checkpoint directory's newest verified checkpoint, copied in as a commit.

`copy_checkpoint` is the one way a checkpoint enters a checkpoint directory from outside its
own training (a task's parent, a population-based search's exploit step).  It goes through
the commit protocol (`candle_restart.ckpt.commit`), like a drain (`drainjob.copy_to_shared`):

* the source is chosen by `newest_verified`: ``last`` or the newest checkpoint that verifies
  (every file's size and recorded CRC-32, `candle_restart.ckpt.restore.find_restart`, read
  only: nothing of the source is set aside or changed);
* the files are copied into a work directory of the target's own
  (``work-warm-<pid>-<token>``, emptied and its dead siblings removed only after ``fence``
  passed, see `commit.begin`), each checked while it is copied against the CRC-32 the source's
  ``ckpt-info.json`` records (`candle_restart.ckpt.checksum.copy_verified`);
* the copy's ``ckpt-info.json`` is the source's with ``origin`` (`Origin`), this writer's
  identity and a fresh timestamp, and no best of the source's run (the new run tracks its own);
* it is published by `commit.commit` under ``fence`` (the caller holds the target's writer
  lease), as ``epochs/<the source's epoch>`` with ``last`` moved to it: a kill -9 at any instant
  leaves the target with either its previous checkpoints and no new one, or the whole verified
  copy; a failure removes the work directory at once.  An epoch of the same number already
  there is replaced only by the commit's own set-aside rename (never a half state).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from candle_restart.ckpt import commit
from candle_restart.ckpt.checksum import copy_verified, list_files
from candle_restart.ckpt.info import timestamp, writer_identity
from candle_restart.ckpt.layout import INFO_FILE, CkptLayout
from candle_restart.ckpt.restore import Found, find_restart
from candle_restart.records.ckptinfo import FileEntry
from candle_restart.records.origin import Origin
from candle_restart.runtime.envvars import pause_point

Log = Callable[[str], None]


def newest_verified(root: Path, log: Log = lambda _m: None) -> Found | None:
    """The newest checkpoint of ``root`` that verifies with its CRCs (None: none does); reads only."""
    return find_restart(CkptLayout.at(root), True, log)


def copy_checkpoint(source: Found, target: CkptLayout, origin: Origin, fence: commit.Fence) -> Path:
    """Copy ``source`` into ``target`` and commit it (see the module docstring); its new path.

    Raises what the copy (`CorruptCheckpointError` on a CRC or size mismatch, `OSError`) or the
    commit (`CommitError`, a failed ``fence`` included) raises; nothing is published then."""
    info = source.info
    files: dict[str, FileEntry | None] = (
        dict(info.files) if info.files is not None else dict.fromkeys(list_files(source.path))
    )
    files.pop(INFO_FILE, None)
    copied = replace(
        info,
        origin=origin,
        writer=writer_identity(),
        timestamp=timestamp(datetime.now()),
        best_metric_last=None,
        best_epoch=None,
        complete=False,
    )
    work_dir = target.work_dir(f"warm-{os.getpid()}-{secrets.token_hex(3)}")
    with commit.writing(target, work_dir, fence) as work:
        for name, entry in files.items():
            copy_verified(source.path / name, work / name, entry)
            pause_point("warm-copy")  # a copy killed here (mid-copy): nothing is published
        return commit.commit(target, info.epoch, copied, best=False, drop_best=True, work=work, fence=fence)
