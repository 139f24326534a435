"""One drain of a checkpoint to the shared tier: the job, and the copy under the commit protocol.

`copy_to_shared` copies a staged checkpoint into a fresh work directory of the shared tier
(`candle_restart.ckpt.commit.writing`: fenced before it deletes anything, and removed on any
failure, an abandoned copy included, so no half copy stays), checks each file as it is copied
(`candle_restart.ckpt.checksum.copy_verified`), and publishes it by the normal commit.
``check`` runs between chunks and before the commit; it raises `Abandoned` when the drainer
gave the job up for a newer checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from candle_restart.ckpt import commit, keep
from candle_restart.ckpt.checksum import copy_verified, list_files
from candle_restart.ckpt.layout import INFO_FILE, CkptLayout, epoch_name
from candle_restart.records.ckptinfo import CkptInfo, FileEntry, read_ckpt_info


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


def keep_shared(
    shared: CkptLayout, epoch_now: int, mode: str, limit: int, fence: commit.Fence, debug: Callable[[str], None]
) -> None:
    """The keep policy on the shared tier after ``epoch_now`` reached it; ``epoch_now``, ``last``
    and ``best`` always stay."""
    on_disk = shared.list_epochs()
    protect = {epoch_now} | {
        e for e in (shared.linked_epoch(shared.last), shared.linked_epoch(shared.best)) if e
    }
    survivors = keep.surviving_epochs(on_disk, mode, limit, protect)
    for epoch in on_disk:
        if epoch not in survivors and commit.remove_epoch(shared, epoch, fence):
            debug(f"drain: removing shared epochs/{epoch_name(epoch)} (keep policy)")


def stage(root: Path, prefix: str, epoch: int, source: Path, serial: int) -> Job:
    """Hard-link the files of the committed ``source`` into a new staging directory in ``root``,
    named ``prefix`` + epoch + a unique tail (a copy where links fail): the job that drains it."""
    staged = root / f"{prefix}{epoch_name(epoch)}-{os.getpid()}-{secrets.token_hex(3)}"
    staged.mkdir()
    try:
        for name in list_files(source):
            (staged / name).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source / name, staged / name)
            except OSError:  # a filesystem without hard links
                shutil.copyfile(source / name, staged / name)
        info = read_ckpt_info(staged / INFO_FILE)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    best = info.best_epoch == epoch and info.position is None
    return Job(epoch, staged, best, serial, complete=info.complete is True)


def sweep_staging(root: Path, prefix: str) -> None:
    """Remove the staging directories (``prefix``*) a dead process left in ``root``."""
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            if name.startswith(prefix):
                shutil.rmtree(root / name, ignore_errors=True)
