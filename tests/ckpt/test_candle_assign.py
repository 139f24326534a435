"""CANDLE-style assignments after construction (``ckpt.keep_limit = 1``) take effect everywhere.

Benchmark code sets the callback's attributes after building it; each one must reach the
collaborator that acts on it (keep policy, best tracker, writer's checksums, the save decision).
"""

from __future__ import annotations

import os
from pathlib import Path

from candle_restart.ckpt import CkptLayout, read_ckpt_info
from tests.helpers import BytesCkpt
from tests.helpers.bytes_ckpt import MakeCkpt


def _run(ckpt: BytesCkpt, values: list[float]) -> None:
    for i, v in enumerate(values):
        ckpt.model.payload = f"epoch {i + 1}".encode()
        ckpt.ckpt_epoch(i, "-", v)


def test_keep_limit_assigned_after_construction_is_the_keep_policy(
    make_ckpt: MakeCkpt, tmp_path: Path
) -> None:
    ckpt = make_ckpt(ckpt_keep_mode="all", ckpt_save_best=False)
    ckpt.keep_mode, ckpt.keep_limit = "linear", 1
    _run(ckpt, [1.0, 1.0, 1.0, 1.0])
    assert CkptLayout.at(tmp_path / "ckpts").list_epochs() == [4]
    assert ckpt.settings.keep_mode == "linear" and ckpt.settings.keep_limit == 1


def test_save_best_off_after_construction_writes_no_best_link(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(ckpt_save_best=True, ckpt_keep_mode="all")
    ckpt.save_best = False
    _run(ckpt, [3.0, 1.0, 2.0])
    root = tmp_path / "ckpts"
    assert not os.path.lexists(root / "best")
    assert read_ckpt_info(root / "last" / "ckpt-info.json").best_epoch is None


def test_checksum_off_after_construction_writes_null_crcs(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(ckpt_checksum=True)
    ckpt.checksum_enabled = False
    _run(ckpt, [1.0])
    info = read_ckpt_info(tmp_path / "ckpts" / "last" / "ckpt-info.json")
    assert info.files and all(entry.crc32 is None for entry in info.files.values())


def test_interval_skip_and_epochs_assigned_after_construction(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(ckpt_save_best=False, ckpt_keep_mode="all")
    ckpt.save_interval, ckpt.skip_epochs, ckpt.epoch_max = 3, 4, 7
    ckpt.metadata = "assigned"
    _run(ckpt, [1.0] * 7)
    root = tmp_path / "ckpts"
    assert CkptLayout.at(root).list_epochs() == [6, 7]
    info = read_ckpt_info(root / "last" / "ckpt-info.json")
    assert info.metadata == "assigned" and info.epochs == 7  # ckpt-info.json's total epochs


def test_running_state_is_the_collaborators(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt()
    _run(ckpt, [2.0, 1.0])
    assert (
        (ckpt.best_metric_last, ckpt.epoch_best)
        == (ckpt.engine.best.value, ckpt.engine.best.epoch)
        == (1.0, 2)
    )
    ckpt.best_metric_last = 0.5  # CANDLE code may seed the running best
    assert ckpt.engine.best.value == 0.5
    ckpt.in_training = True
    assert ckpt.engine.in_training is True
    ckpt.in_training = False
