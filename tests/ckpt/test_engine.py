"""The engine's collaborators: the commit thread hands results back; restart failures are structured."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, NoCheckpointError, find_restart
from candle_restart.ckpt.restore import Rejected
from candle_restart.ckpt.sink import CheckpointFiles
from tests.helpers import BytesCkpt, BytesModel


class GatedSnapshot:
    """A real snapshot of the bytes model whose write waits for ``gate`` (set by the test)."""

    model_file = "model.bin"

    def __init__(self, payload: bytes, gate: threading.Event) -> None:
        self.payload, self.gate = payload, gate

    def write(self, files: CheckpointFiles) -> None:
        assert self.gate.wait(timeout=120)
        with files.create(self.model_file) as sink:
            sink.write(self.payload)

    def discard(self) -> None:
        pass


class AsyncBytesCkpt(BytesCkpt):
    gate = threading.Event()

    def snapshot_model(self, epoch: int) -> GatedSnapshot:
        return GatedSnapshot(bytes(self.model.payload), self.gate)


def test_the_commit_thread_hands_its_result_to_the_training_thread(tmp_path: Path) -> None:
    ckpt = AsyncBytesCkpt({"epochs": 3, "ckpt_directory": str(tmp_path / "c")}, logger=None)
    ckpt.set_model(BytesModel(b"one"))
    ckpt.gate = threading.Event()
    ckpt.in_training = True  # as a backend's training hooks set it: commits run in the background
    ckpt.save_epoch(1)
    assert ckpt.committer.busy and ckpt.epochs == [] and not ckpt.links_own
    ckpt.gate.set()
    assert ckpt.committer.join(timeout=120)
    layout = CkptLayout.at(tmp_path / "c")
    assert layout.linked_epoch(layout.last) == 1  # committed on disk ...
    assert ckpt.epochs == [] and not ckpt.links_own  # ... but recorded only by the training thread
    ckpt.wait_for_commit()
    assert ckpt.epochs == [1] and ckpt.links_own and ckpt.cksum_model == "__DISABLED__"


def test_required_restart_names_the_checkpoint_that_failed_and_why(make_ckpt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ckpt = make_ckpt(ckpt_keep_mode="all")
    ckpt.ckpt_epoch(0, "-", 1.0)
    root = tmp_path / "ckpts"
    (root / "epochs" / "001" / "model.bin").write_bytes(b"truncated!")
    with pytest.raises(NoCheckpointError) as err:
        make_ckpt(ckpt_restart_mode="required").restart(BytesModel())
    message = str(err.value)
    assert "is 'required' but no checkpoint could be found; 'last' -> epochs/001 is unusable:" in message
    assert "model.bin: has 10 bytes, ckpt-info.json recorded 7" in message


def test_find_restart_records_each_rejected_checkpoint(make_ckpt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ckpt = make_ckpt(ckpt_keep_mode="all")
    for epoch in range(3):
        ckpt.ckpt_epoch(epoch, "-", 1.0)
    root = tmp_path / "ckpts"
    os.unlink(root / "epochs" / "003" / "ckpt-info.json")
    (root / "epochs" / "002" / "model.bin").write_bytes(b"x")
    rejected: list[Rejected] = []
    found = find_restart(CkptLayout.at(root), True, lambda _m: None, set_aside=True, rejected=rejected)
    assert found is not None and found.epoch == 1
    assert [(r.epoch, r.via) for r in rejected] == [(3, "last"), (2, "scan")]
    assert "ckpt-info.json: is missing" in str(rejected[0].error)
    aside = rejected[1].set_aside_as
    assert aside is not None and aside.is_dir() and aside.name.startswith("002.corrupt-")
