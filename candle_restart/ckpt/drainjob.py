"""One drain of a checkpoint to the shared tier: the job, and the copy under the commit protocol.

`copy_to_shared` copies a staged checkpoint into a fresh work directory of the shared tier
(`candle_restart.ckpt.commit.writing`: fenced before it deletes anything, and removed on any
failure, an abandoned copy included, so no half copy stays), checks each file as it is copied
(`candle_restart.ckpt.checksum.copy_verified`), and publishes it by the normal commit.
``check`` runs between chunks and before the commit; it raises `Abandoned` when the drainer
gave the job up for a newer checkpoint.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from candle_restart.ckpt import commit
from candle_restart.ckpt.checksum import copy_verified, list_files
from candle_restart.ckpt.layout import INFO_FILE, CkptLayout
from candle_restart.records.ckptinfo import CkptInfo, FileEntry


@dataclass
class Job:
    """One checkpoint to drain: its epoch, its staged hard links, whether it is a best, its serial."""

    epoch: int
    staged: Path
    best: bool
    serial: int
    complete: bool = False  # the final checkpoint of the training
    abandon: bool = False  # set (under the drainer's lock) when `flush` needs a newer checkpoint


class Abandoned(Exception):
    """A drain in flight was abandoned for a newer checkpoint (raised between chunks, before its commit)."""


def copy_to_shared(
    job: Job, info: CkptInfo, shared: CkptLayout, fence: commit.Fence, check: Callable[[], None]
) -> int:
    """Copy, verify and publish ``job`` (whose ``ckpt-info.json`` is ``info``) on ``shared``;
    the bytes copied.  Raises what a copy, a check or the commit raises (nothing published)."""
    # Written by CANDLE (no files table): every file but the info, checked against the source alone.
    files: dict[str, FileEntry | None] = (
        dict(info.files) if info.files is not None else dict.fromkeys(list_files(job.staged))
    )
    files.pop(INFO_FILE, None)
    work_name = shared.work_dir(f"drain-{os.getpid()}-{secrets.token_hex(3)}")
    with commit.writing(shared, work_name, fence) as work:
        nbytes = 0
        for name, entry in files.items():
            nbytes += copy_verified(job.staged / name, work / name, entry, check)
        check()
        commit.commit(
            shared,
            job.epoch,
            info,
            best=job.best,
            drop_best=info.best_epoch is None,
            work=work,
            fence=fence,
        )
    return nbytes
