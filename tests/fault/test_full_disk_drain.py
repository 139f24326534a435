"""A full shared tier under two tiers: a failed drain leaves no partial copy holding the space.

The shared ``ckpt_directory`` is a 2 MiB tmpfs (``small_fs``), the node-local tier an ordinary
directory.  Real files, the real drain thread, a real ENOSPC.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, CommitError, verify_checkpoint
from tests.helpers import BytesCkpt, BytesModel, report


def _ckpt(small_fs: Path, tmp_path: Path) -> BytesCkpt:
    params = {
        "epochs": 10,
        "ckpt_directory": str(small_fs / "ckpts"),
        "ckpt_local_directory": str(tmp_path / "local"),
        "ckpt_save_best": False,
        "ckpt_checksum": True,
        "ckpt_drain_interval": 1,
    }
    ckpt = BytesCkpt(params, logger=None)
    ckpt.set_model(BytesModel())
    return ckpt


def _commit(ckpt: BytesCkpt, epoch: int, nbytes: int) -> None:
    """Commit 0-based ``epoch`` with ``nbytes`` of payload and let its drain settle."""
    assert ckpt.drainer is not None and isinstance(ckpt.model, BytesModel)
    ckpt.model.payload = os.urandom(nbytes)
    ckpt.ckpt_epoch(epoch, "-", None)
    ckpt.drainer.join()


def test_a_failed_drain_leaves_no_partial_copy_on_the_full_shared_tier(small_fs: Path, tmp_path: Path) -> None:
    ckpt = _ckpt(small_fs, tmp_path)
    shared = CkptLayout.at(small_fs / "ckpts")
    _commit(ckpt, 0, 600_000)
    assert shared.linked_epoch(shared.last) == 1
    _commit(ckpt, 1, 1_800_000)  # does not fit beside epoch 1: the copy fails half-way with ENOSPC
    assert shared.linked_epoch(shared.last) == 1
    leftovers = [w.name for w in shared.work_dirs()]
    with pytest.raises(CommitError, match="No space left on device"):
        ckpt.release_writer()  # the flush at the end tries once more, and fails the same way
    leftovers += [w.name for w in shared.work_dirs()]
    assert leftovers == [], f"a failed drain left {leftovers} on the full shared tier"
    # The space is free again: a checkpoint that fits drains.
    _commit(ckpt, 2, 600_000)
    assert shared.linked_epoch(shared.last) == 3 and not shared.work_dirs()
    verify_checkpoint(shared.epoch_dir(3), True)
    ckpt.release_writer()
    report("full shared tier under two tiers", partial_copies_left=len(leftovers), lost=0)


def test_a_partial_copy_a_killed_drain_left_goes_at_the_next_drain(small_fs: Path, tmp_path: Path) -> None:
    """What a drain killed with -9 mid-copy leaves (a dead process's work directory) is removed by
    the next writer's first drain, after its lease check, and its space is used again."""
    shared = CkptLayout.at(small_fs / "ckpts")
    dead = shared.work_dir("drain-999999-dead00")
    dead.mkdir(parents=True)
    (dead / "model.bin").write_bytes(os.urandom(1_600_000))
    ckpt = _ckpt(small_fs, tmp_path)
    _commit(ckpt, 0, 600_000)  # fits only once the dead copy is gone
    assert shared.linked_epoch(shared.last) == 1 and not shared.work_dirs()
    ckpt.release_writer()
