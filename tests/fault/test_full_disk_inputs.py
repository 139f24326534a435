"""A full disk: a failed checkpoint write frees its space at once, and ``candle-restart run`` says so
in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, CommitError
from candle_restart.ckpt.sink import CheckpointFiles
from tests.helpers import BytesCkpt, BytesModel, cli, toy_task


class LooseSnapshot:
    """A snapshot that leaves its files for `CheckpointFiles.finish` to close, as the protocol allows."""

    model_file = "model.bin"

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def write(self, files: CheckpointFiles) -> None:
        files.create("train_state.bin").write(self.payload)
        files.create(self.model_file).write(self.payload)

    def discard(self) -> None:
        pass


class SnapshotCkpt(BytesCkpt):
    def snapshot_model(self, epoch: int) -> LooseSnapshot:
        return LooseSnapshot(self.model.payload)


def open_files_under(root: Path) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)):
            out.append(target)
    return out


def test_a_failed_checkpoint_write_keeps_no_descriptor(small_fs: Path) -> None:
    ckpt = SnapshotCkpt({"epochs": 100, "ckpt_directory": str(small_fs / "ckpts")}, logger=None)
    ckpt.set_model(BytesModel(os.urandom(400_000)))
    with pytest.raises(CommitError, match="No space left on device"):
        for epoch in range(100):
            ckpt.ckpt_epoch(epoch, "-", 1.0)
    lease = str(small_fs / "ckpts" / ".writer.lock")  # the writer lease is held on purpose
    assert [f for f in open_files_under(small_fs) if f != lease] == []
    layout = CkptLayout.at(small_fs / "ckpts")
    committed = layout.linked_epoch(layout.last)
    assert committed is not None
    ckpt.model.payload = b"small"  # with the failed write's space freed, a small checkpoint fits
    ckpt.ckpt_epoch(committed, "-", 0.5)
    assert layout.linked_epoch(layout.last) == committed + 1


def test_run_on_a_full_disk_is_one_line(small_fs: Path) -> None:
    task = toy_task(small_fs, "full")
    fd = os.open(small_fs / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # the disk is full
        pass
    finally:
        os.close(fd)
    proc = cli("run", task.path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("No space left on device")
    assert len(proc.stderr.strip().splitlines()) == 1
