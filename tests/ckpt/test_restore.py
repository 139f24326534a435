"""Choosing a restart checkpoint: fallback for a deleted, dangling, corrupt or malformed last."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from candle_restart.ckpt import (
    CkptLayout,
    CorruptCheckpointError,
    find_restart,
    read_ckpt_info,
    verify_checkpoint,
)
from candle_restart.runtime.lease import LeaseLost
from tests.helpers import BytesCkpt, BytesModel


@pytest.fixture
def three(make_ckpt, tmp_path: Path) -> CkptLayout:  # type: ignore[no-untyped-def]
    ckpt = make_ckpt(ckpt_checksum=True, ckpt_keep_mode="all")
    for i in range(3):
        ckpt.model.payload = f"epoch {i + 1}".encode() * 100
        ckpt.ckpt_epoch(i, "-", 1.0)
    return CkptLayout.at(tmp_path / "ckpts")


def _find(layout: CkptLayout, check: bool = True) -> tuple[int | None, list[str]]:
    lines: list[str] = []
    found = find_restart(layout, check, lines.append)
    return (found.epoch if found else None), lines


def test_last_is_used_when_whole(three: CkptLayout) -> None:
    epoch, lines = _find(three)
    assert epoch == 3
    assert all(line.startswith("checksummed: ") for line in lines)


def test_deleted_last_falls_back(three: CkptLayout) -> None:
    os.unlink(three.last)
    epoch, lines = _find(three)
    assert epoch == 3
    assert any("no 'last' link" in line for line in lines)
    assert any("falling back to epochs/003" in line for line in lines)


def test_dangling_last_falls_back(three: CkptLayout) -> None:
    shutil.rmtree(three.epoch_dir(3))
    epoch, lines = _find(three)
    assert epoch == 2
    assert any("'last' -> epochs/003 is unusable" in line and "is missing" in line for line in lines)


def test_corrupt_last_falls_back_and_names_the_file(three: CkptLayout) -> None:
    model = three.epoch_dir(3) / "model.bin"
    data = bytearray(model.read_bytes())
    data[10] ^= 0xFF
    model.write_bytes(bytes(data))
    epoch, lines = _find(three)
    assert epoch == 2
    assert any("epochs/003/model.bin: checksum mismatch: ckpt-info.json recorded" in line for line in lines)
    # Without checksums a same-size flip is not detectable, but truncation is:
    assert _find(three, check=False)[0] == 3
    model.write_bytes(bytes(data[:5]))
    epoch, lines = _find(three, check=False)
    assert epoch == 2 and any("has 5 bytes, ckpt-info.json recorded" in line for line in lines)


@pytest.mark.parametrize(
    "content, fragment",
    [
        ('{"epoch": 3, "model_fi', "is not valid JSON"),
        ("\x00\x01garbage", "is not valid JSON"),
        ("[1, 2, 3]", "must hold a JSON object"),
        ('{"epoch": "three", "model_file": "model.bin"}', "epoch: must be an integer"),
        ('{"epoch": 3, "model_file": "../../etc/passwd"}', "model_file: must be a file name inside"),
        (
            '{"epoch": 3, "model_file": "model.bin", "files": {"/etc/passwd": {"size": 1}}}',
            "outside the checkpoint",
        ),
    ],
)
def test_bad_info_is_detected_with_file_and_key(three: CkptLayout, content: str, fragment: str) -> None:
    info_file = three.epoch_dir(3) / "ckpt-info.json"
    info_file.write_text(content)
    with pytest.raises(CorruptCheckpointError) as err:
        read_ckpt_info(info_file)
    assert str(err.value).startswith(str(info_file)) and fragment in str(err.value)
    epoch, lines = _find(three)
    assert epoch == 2 and any(fragment in line for line in lines)


def test_member_symlink_escaping_the_checkpoint_is_refused(three: CkptLayout, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.bin"
    shutil.copy(three.epoch_dir(3) / "model.bin", outside)
    os.unlink(three.epoch_dir(3) / "model.bin")
    os.symlink(outside, three.epoch_dir(3) / "model.bin")
    with pytest.raises(CorruptCheckpointError, match="resolves outside its checkpoint"):
        verify_checkpoint(three.epoch_dir(3), check_checksums=True)


def test_nothing_verifies_means_fresh_start(three: CkptLayout) -> None:
    for n in (1, 2, 3):
        os.unlink(three.epoch_dir(n) / "ckpt-info.json")
    epoch, lines = _find(three)
    assert epoch is None and len([x for x in lines if "skipping" in x]) == 2


def test_moved_run_directory_still_restarts(make_ckpt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ckpt = make_ckpt()
    ckpt.model.payload = b"moved"
    ckpt.ckpt_epoch(0, "-", 1.0)
    shutil.move(tmp_path / "ckpts", tmp_path / "elsewhere")
    again = BytesCkpt({"epochs": 10, "ckpt_directory": str(tmp_path / "elsewhere")}, logger=None)
    model = BytesModel()
    assert again.restart(model) is not None and model.payload == b"moved"


def test_reads_a_checkpoint_candle_wrote(tmp_path: Path) -> None:
    """CANDLE: save/ckpts/epochs/NNN with model.h5, absolute links, Infinity, no file table."""
    root = tmp_path / "save" / "ckpts"
    epoch_dir = root / "epochs" / "002"
    epoch_dir.mkdir(parents=True)
    (epoch_dir / "model.h5").write_bytes(b"h5 bytes")
    import zlib

    (epoch_dir / "ckpt-info.json").write_text(
        '{"epoch": 2, "save_best_metric": "val_loss", "best_metric_last": Infinity, "model_file": "model.h5", '
        f'"checksum": "{zlib.crc32(b"h5 bytes")}", "timestamp": "2024-01-01 00:00:00", "time_elapsed": "__FIRST__", '
        '"metadata": null}\n'
    )
    os.symlink(str(epoch_dir), root / "last")  # CANDLE wrote absolute links
    found = find_restart(CkptLayout.at(root), True, lambda _m: None)
    assert found is not None and found.epoch == 2 and found.via == "last"
    (epoch_dir / "model.h5").write_bytes(b"h5 bytez")
    assert find_restart(CkptLayout.at(root), True, lambda _m: None) is None


def test_info_written_is_strict_json(three: CkptLayout) -> None:
    text = (three.last / "ckpt-info.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))


def test_a_restarting_writer_that_lost_its_lease_sets_nothing_aside(three: CkptLayout) -> None:
    """Setting a checkpoint aside is a rename: a writer stopped past its lease (whose read may have
    raced the new holder replacing that epoch) checks its lease first, and renames nothing."""
    model = three.epoch_dir(3) / "model.bin"
    model.write_bytes(model.read_bytes()[:-1])

    def lost() -> None:
        raise LeaseLost(str(three.writer_lock), None, "the lease was lost (now held by host node-b); not acting")

    with pytest.raises(LeaseLost, match="lease was lost"):
        find_restart(three, True, lambda _m: None, set_aside=True, fence=lost)
    assert three.list_epochs() == [1, 2, 3] and model.is_file()
    found = find_restart(three, True, lambda _m: None, set_aside=True)  # the holder's own: set aside
    assert found is not None and found.epoch == 2 and three.list_epochs() == [1, 2]
