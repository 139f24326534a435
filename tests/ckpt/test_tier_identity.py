"""The node-local tier is bound to its shared tier by an identity, not by the shared path alone.

After ``ckpts/`` is moved aside (``resume --restart-corrupt``), deleted, or its run root
re-created at the same path, the node-local tier a previous run left under the same
``ckpt_local_directory`` belongs to a shared tier that is gone: a restart starts afresh
instead of loading it and draining it into the new shared tier.  Real files, the bytes
backend of tests/helpers.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout
from candle_restart.ckpt.drain import local_root
from candle_restart.records.localtier import TIER_ID_FILE, LocalTierError, read_tier_id
from tests.helpers import BytesCkpt, BytesModel, snapshot


def _params(tmp_path: Path) -> dict[str, object]:
    return {
        "epochs": 10,
        "ckpt_directory": str(tmp_path / "run" / "ckpts"),
        "ckpt_local_directory": str(tmp_path / "local"),
        "ckpt_save_best": False,
        "ckpt_checksum": True,
        "ckpt_drain_interval": 2,
    }


def _train(ckpt: BytesCkpt, epochs: range, tag: str) -> None:
    assert ckpt.drainer is not None and isinstance(ckpt.model, BytesModel)
    for epoch in epochs:
        ckpt.model.payload = f"{tag} epoch {epoch + 1}".encode()
        ckpt.ckpt_epoch(epoch, "-", None)
        ckpt.drainer.join()


def _earlier_run(tmp_path: Path) -> Path:
    """A two-tier run preempted after 5 epochs: its node-local tier stays on the node."""
    first = BytesCkpt(_params(tmp_path), logger=None)
    first.set_model(BytesModel())
    _train(first, range(5), "earlier")
    first.release_writer()
    local = local_root(tmp_path / "local", tmp_path / "run" / "ckpts")
    assert CkptLayout.at(local).list_epochs() == [4, 5]
    return local


def _set_aside(shared: Path) -> None:
    os.rename(shared, shared.with_name("ckpts.corrupt-20261206T000000"))


def _recreate_run_root(shared: Path) -> None:
    shutil.rmtree(shared.parent)
    shared.parent.mkdir()


@pytest.mark.parametrize(
    "gone",
    [_set_aside, shutil.rmtree, _recreate_run_root],
    ids=["set aside (--restart-corrupt)", "deleted (rm -rf ckpts)", "run root re-created"],
)
def test_a_stale_local_tier_never_beats_a_fresh_start(tmp_path: Path, gone: Callable[[Path], None]) -> None:
    local = _earlier_run(tmp_path)
    shared = tmp_path / "run" / "ckpts"
    gone(shared)
    second = BytesCkpt(_params(tmp_path), logger="DEFAULT", verbose=False)
    model = BytesModel(b"fresh")
    assert second.restart(model) is None  # a fresh start: nothing of the earlier run is loaded
    assert model.payload == b"fresh"
    ignored = [line for line in (shared / "ckpt.log").read_text().splitlines() if "node-local tier" in line]
    assert len(ignored) == 1 and f"ignoring the node-local tier {local}" in ignored[0], ignored
    assert CkptLayout.at(local).list_epochs() == []
    second.set_model(model)
    _train(second, range(2), "fresh")
    second.release_writer()
    layout = CkptLayout.at(shared)
    assert layout.list_epochs() == [2]  # nothing of the earlier run was drained into the new tier
    assert (layout.epoch_dir(2) / "model.bin").read_bytes() == b"fresh epoch 2"


def test_the_identity_is_in_both_tiers_and_a_restart_on_the_same_tier_uses_the_local_one(
    tmp_path: Path,
) -> None:
    local = _earlier_run(tmp_path)
    shared = tmp_path / "run" / "ckpts"
    ident = read_tier_id(shared / TIER_ID_FILE)
    assert ident is not None and read_tier_id(local / TIER_ID_FILE) == ident
    os.unlink(shared / "last")  # the shared tier lags: the node-local epoch 5 is the newer one
    shutil.rmtree(shared / "epochs" / "005")
    again = BytesCkpt(_params(tmp_path), logger=None)
    model = BytesModel()
    J = again.restart(model)
    assert J is not None and J["epoch"] == 5 and model.payload == b"earlier epoch 5"
    again.release_writer()
    assert read_tier_id(shared / TIER_ID_FILE) == ident  # never replaced


def test_a_malformed_shared_identity_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    local = _earlier_run(tmp_path)
    shared = tmp_path / "run" / "ckpts"
    (shared / TIER_ID_FILE).write_text(json.dumps({"tier_id": 7}))
    before = snapshot(tmp_path, tmp_path / "none")
    again = BytesCkpt(_params(tmp_path), logger=None)
    with pytest.raises(LocalTierError) as caught:
        again.restart(BytesModel())
    assert str(caught.value).startswith(f"{shared / TIER_ID_FILE}: tier_id: must be")
    assert "\n" not in str(caught.value)
    assert not (shared / ".writer.lock").exists()  # the lease taken for the restart was given back
    del again

    def files(tree: dict[str, tuple[str, int, bytes]]) -> dict[str, tuple[str, int, bytes]]:
        """Every file and link but the writer lease's marker (taken and given back)."""
        return {k: v for k, v in tree.items() if v[0] != "dir" and ".writer.lock" not in k}

    assert files(snapshot(tmp_path, tmp_path / "none")) == files(before)
    assert CkptLayout.at(local).list_epochs() == [4, 5]
