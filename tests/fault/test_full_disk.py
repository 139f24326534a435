"""Checkpoints on a small filesystem until it fills: a clear error, last untouched, no debris taken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, CommitError, find_restart
from tests.helpers import BytesCkpt, BytesModel, report


def test_commits_until_the_disk_is_full(small_fs: Path) -> None:
    ckpt = BytesCkpt(
        {
            "epochs": 1000,
            "ckpt_directory": str(small_fs / "ckpts"),
            "ckpt_checksum": True,
            "ckpt_keep_mode": "all",
        },
        logger=None,
    )
    ckpt.set_model(BytesModel())
    layout = CkptLayout.at(small_fs / "ckpts")
    committed = 0
    with pytest.raises(CommitError) as err:
        for epoch in range(1000):
            ckpt.model.payload = os.urandom(300_000)
            ckpt.ckpt_epoch(epoch, "-", 1.0)
            committed = epoch + 1
    assert "No space left on device" in str(err.value) and "\n" not in str(err.value)
    assert committed >= 2
    assert layout.linked_epoch(layout.last) == committed
    found = find_restart(layout, True, lambda _m: None)
    assert found is not None and found.epoch == committed and found.via == "last"
    assert layout.list_epochs() == list(range(1, committed + 1))  # the half-written work/ is no checkpoint
    model = BytesModel()
    again = BytesCkpt({"epochs": 1000, "ckpt_directory": str(small_fs / "ckpts")}, logger=None)
    assert again.restart(model)["epoch"] == committed  # type: ignore[index]
    report("full disk", commits_before_full=committed, failing_commit_raised=1, last_intact=1, lost=0)
