"""Corruption of the newest and of older checkpoints: detected, fallen back from, set aside, named."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, CorruptCheckpointError, verify_checkpoint
from tests.helpers import BytesCkpt, BytesModel, report


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


CORRUPTIONS: dict[str, Callable[[Path], object]] = {  # a write_bytes returns its count
    "flip a byte of the model": lambda d: _flip(d / "model.bin"),
    "truncate the model": lambda d: (d / "model.bin").write_bytes((d / "model.bin").read_bytes()[:100]),
    "delete the model": lambda d: (d / "model.bin").unlink(),
    "delete ckpt-info.json": lambda d: (d / "ckpt-info.json").unlink(),
    "garbage ckpt-info.json": lambda d: (d / "ckpt-info.json").write_bytes(os.urandom(64)),
    "truncated ckpt-info.json": lambda d: (d / "ckpt-info.json").write_text(
        (d / "ckpt-info.json").read_text()[:40]
    ),
    "ckpt-info.json of the wrong shape": lambda d: (d / "ckpt-info.json").write_text(json.dumps([1, 2, 3])),
    "ckpt-info.json with a wrong type": lambda d: (d / "ckpt-info.json").write_text(
        json.dumps({**json.loads((d / "ckpt-info.json").read_text()), "epoch": "3"})
    ),
    "files entry escaping the checkpoint": lambda d: (d / "ckpt-info.json").write_text(
        json.dumps({**json.loads((d / "ckpt-info.json").read_text()), "files": {"../../x": {"size": 1}}})
    ),
}


def _three(root: Path) -> CkptLayout:
    ckpt = BytesCkpt(
        {"epochs": 10, "ckpt_directory": str(root), "ckpt_checksum": True, "ckpt_keep_mode": "all"},
        logger=None,
    )
    ckpt.set_model(BytesModel())
    for epoch in range(3):
        ckpt.model.payload = os.urandom(4096) + bytes([epoch])
        ckpt.ckpt_epoch(epoch, "-", 1.0)
    return CkptLayout.at(root)


def _restart(root: Path) -> tuple[int | None, list[str]]:
    lines: list[str] = []
    ckpt = BytesCkpt({"epochs": 10, "ckpt_directory": str(root)}, logger=None)
    ckpt.info = lines.append  # type: ignore[method-assign, assignment]
    J = ckpt.restart(BytesModel())
    return (J["epoch"] if J else None), lines


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_last_is_detected_set_aside_and_fallen_back_from(tmp_path: Path, kind: str) -> None:
    layout = _three(tmp_path / "ckpts")
    CORRUPTIONS[kind](layout.epoch_dir(3))
    epoch, lines = _restart(layout.root)
    assert epoch == 2, lines
    aside = [p.name for p in layout.epochs.iterdir() if p.name.startswith("003.corrupt-")]
    assert len(aside) == 1 and layout.list_epochs() == [1, 2]
    assert any(f"set aside epochs/003 as epochs/{aside[0]}" in line for line in lines)
    assert any("'last' -> epochs/003 is unusable" in line for line in lines)
    report("corruption of last", kind=kind, detected=1, fell_back_to=epoch, set_aside=len(aside))


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_older_checkpoint_is_detected_and_skipped(tmp_path: Path, kind: str) -> None:
    layout = _three(tmp_path / "ckpts")
    CORRUPTIONS[kind](layout.epoch_dir(2))
    with pytest.raises(CorruptCheckpointError):
        verify_checkpoint(layout.epoch_dir(2), check_checksums=True)
    os.unlink(layout.epoch_dir(3) / "model.bin")  # now last is broken too: the fallback must skip epoch 2
    epoch, lines = _restart(layout.root)
    assert epoch == 1, lines
    assert sorted(p.name[:11] for p in layout.epochs.iterdir() if ".corrupt-" in p.name) == [
        "002.corrupt",
        "003.corrupt",
    ]
    report("corruption of an older checkpoint", kind=kind, detected=1, fell_back_to=epoch)


def test_nothing_set_aside_by_readers(tmp_path: Path) -> None:
    """The coordinator and `candle-restart ckpt` read; only a restarting writer renames."""
    from candle_restart.ckpt import find_restart

    layout = _three(tmp_path / "ckpts")
    _flip(layout.epoch_dir(3) / "model.bin")
    found = find_restart(layout, True, lambda _m: None)
    assert found is not None and found.epoch == 2 and layout.list_epochs() == [1, 2, 3]
