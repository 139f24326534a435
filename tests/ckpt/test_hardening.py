"""Cases found in review: links where directories should be, interrupted replacements, fsync order."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from candle_restart.ckpt import CkptInfo, CkptLayout, CommitError, NoCheckpointError, commit
from candle_restart.runtime import fsio
from tests.helpers import BytesCkpt, BytesModel
from tests.helpers.bytes_ckpt import MakeCkpt


def _save(ckpt: BytesCkpt, epochs: int, payload: bytes = b"w") -> None:
    for i in range(epochs):
        ckpt.model.payload = payload + bytes([i])
        ckpt.ckpt_epoch(i, "-", 1.0)


def test_epochs_dir_that_is_a_symlink_is_refused(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    for name in ("001", "002", "003"):
        (outside / name).mkdir(parents=True)
    (tmp_path / "ckpts").mkdir()
    os.symlink(outside, tmp_path / "ckpts" / "epochs")
    ckpt = make_ckpt(ckpt_keep_limit=1)
    with pytest.raises(CommitError, match="epochs: is a symlink"):
        _save(ckpt, 1)
    assert not commit.remove_epoch(CkptLayout.at(tmp_path / "ckpts"), 1)
    assert sorted(p.name for p in outside.iterdir()) == ["001", "002", "003"]


def test_replacement_interrupted_between_renames_is_undone(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt()
    _save(ckpt, 1)
    layout = CkptLayout.at(tmp_path / "ckpts")
    os.rename(layout.epoch_dir(1), layout.epochs / ".old-001-123-456")  # crash after step 2
    commit.begin(layout)
    assert layout.list_epochs() == [1] and (layout.last / "ckpt-info.json").is_file()


def test_last_copied_as_a_real_directory_is_kept_aside(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    _save(make_ckpt(), 2)
    shutil.copytree(tmp_path / "ckpts", tmp_path / "copy", symlinks=False)
    again = BytesCkpt({"epochs": 10, "ckpt_directory": str(tmp_path / "copy")}, logger=None)
    model = BytesModel()
    assert again.restart(model) is not None
    again.set_model(model)
    again.ckpt_epoch(2, "-", 0.5)
    assert os.readlink(tmp_path / "copy" / "last") == "epochs/003"
    assert any(p.name.startswith("last.not-a-link-") for p in (tmp_path / "copy").iterdir())


def test_enabled_disabled_understand_strings_and_numpy_bools(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt(ckpt_checksum="False", ckpt_save_best="0", flag_on="yes", np_flag=np.True_)
    assert ckpt.disabled("ckpt_checksum") and not ckpt.enabled("ckpt_checksum")
    assert ckpt.disabled("ckpt_save_best") and ckpt.enabled("flag_on") and ckpt.enabled("np_flag")
    assert not ckpt.enabled("absent") and not ckpt.disabled("absent")
    assert make_ckpt(ckpt_checksum=np.True_).checksum_enabled is True


def test_keep_answers_like_clean(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt(ckpt_keep_mode="exponential", ckpt_keep_limit=3, ckpt_save_best=False)
    _save(ckpt, 10)
    assert ckpt.layout.list_epochs() == [7, 9, 10]
    assert [e for e in range(1, 11) if ckpt.keep(e, 10, 0)] == [7, 9, 10]


def test_recorded_checksums_are_verified_even_when_this_run_has_them_off(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    _save(make_ckpt(ckpt_checksum=True), 2, payload=b"x" * 1000)
    model_file = tmp_path / "ckpts" / "epochs" / "002" / "model.bin"
    data = bytearray(model_file.read_bytes())
    data[3] ^= 1
    model_file.write_bytes(bytes(data))
    model = BytesModel()
    J = make_ckpt(ckpt_checksum=False).restart(model)
    assert J is not None and J["epoch"] == 1


def test_required_restart_with_nothing_whole_names_the_reason(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    _save(make_ckpt(), 1)
    (tmp_path / "ckpts" / "epochs" / "001" / "ckpt-info.json").write_text("{trunc")
    with pytest.raises(NoCheckpointError) as err:
        make_ckpt(ckpt_restart_mode="required").restart(BytesModel())
    assert "epochs/001/ckpt-info.json: is not valid JSON" in str(err.value)


def test_commit_order_fsyncs_before_each_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order the protocol promises: files and work/ durable, then rename, then epochs/ durable, then links."""
    events: list[tuple[str, str]] = []
    real_fsync, real_rename, real_replace = fsio.fsync_path, os.rename, os.replace

    def fsync(p: Path) -> None:
        events.append(("fsync", Path(p).name))
        real_fsync(p)

    def rename(a: str | Path, b: str | Path) -> None:
        events.append(("rename", f"{Path(a).name}>{Path(b).name}"))
        real_rename(a, b)

    def replace(a: str | Path, b: str | Path) -> None:
        events.append(("replace", Path(b).name))
        real_replace(a, b)

    monkeypatch.setattr(fsio, "fsync_path", fsync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "replace", replace)
    layout = CkptLayout.at(tmp_path)
    work = commit.begin(layout)
    (work / "model.bin").write_bytes(b"x")
    commit.commit(layout, 1, CkptInfo(1, "model.bin"), best=True)
    order = [f"{kind}:{name}" for kind, name in events]
    assert order.index("fsync:model.bin") < order.index("fsync:work") < order.index("rename:work>001")
    assert order.index("fsync:ckpt-info.json") < order.index("fsync:work")
    assert order.index("rename:work>001") < order.index("fsync:epochs") < order.index("replace:best")
    assert order.index("replace:best") < order.index("replace:last")
    assert order[-1] == "fsync:" + tmp_path.name  # the links' directory, after the last swap


def test_restart_finds_an_epoch_left_aside_by_an_interrupted_replacement(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt()
    _save(ckpt, 2)
    layout = CkptLayout.at(tmp_path / "ckpts")
    os.rename(layout.epoch_dir(2), layout.epochs / ".old-002-99-1")  # killed between the two renames
    model = BytesModel()
    J = make_ckpt().restart(model)
    assert J is not None and J["epoch"] == 2 and model.payload == b"w\x01"


def test_an_epoch_removed_by_the_next_writer_between_fence_and_rename_is_not_an_error(
    make_ckpt: MakeCkpt, tmp_path: Path
) -> None:
    """A writer paused right after its fence passed, while the next writer took the lease and its
    keep policy removed the epoch: continued, it finds nothing to remove (no raw OSError escapes;
    its next commit fails its fence as `CommitError`)."""
    ckpt = make_ckpt(epochs=3)
    for epoch in range(2):
        ckpt.ckpt_epoch(epoch, "-", 1.0)
    layout = CkptLayout.at(tmp_path / "ckpts")
    assert 1 in layout.list_epochs()

    def next_writer_removes_it() -> None:  # what the other writer does while this one is paused
        shutil.rmtree(layout.epoch_dir(1))

    assert not commit.remove_epoch(layout, 1, next_writer_removes_it)
    assert 1 not in layout.list_epochs() and layout.last.is_symlink()
