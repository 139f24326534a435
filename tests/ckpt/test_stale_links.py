"""Keep policy and links as CANDLE's: ``best`` pins a checkpoint only while ``ckpt_save_best`` is
on and only when it is this run's (or the restored checkpoint's); a fresh start inherits
neither ``best`` nor ``last`` from an earlier run.  Framework-free backend, real files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from candle_restart.candle import ParamRequired
from candle_restart.ckpt import CkptInfo, CkptLayout, ParamError, read_ckpt_info
from tests.helpers import BytesCkpt, BytesModel

FALLING = [5.0, 4.0, 3.0, 2.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]


def _train(root: Path, epochs: int, values: list[float] | None = None, **params: Any) -> BytesCkpt:
    """One run, as a CANDLE benchmark does it: restart per ckpt_restart_mode, then train to ``epochs``."""
    ckpt = BytesCkpt({"epochs": epochs, "ckpt_directory": str(root), **params}, logger=None)
    model = BytesModel()
    ckpt.set_model(model)
    J = ckpt.restart(model)
    for epoch in range(J["epoch"] if J else 0, epochs):
        model.payload = f"epoch {epoch + 1}".encode()
        ckpt.ckpt_epoch(epoch, "-", (values or FALLING)[epoch])
    return ckpt


def test_candles_four_step_acceptance_sequence_leaves_one_epoch_directory(tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    _train(root, 3)
    assert CkptLayout.at(root).list_epochs() == [1, 2, 3]
    second = _train(root, 5)
    assert second.restarted is not None and second.restarted["epoch"] == 3 and second.epochs == [4, 5]
    third = _train(root, 5, ckpt_restart_mode="off")
    assert third.restarted is None and third.epochs == [1, 2, 3, 4, 5]
    assert os.readlink(root / "best") == "epochs/005"  # the third run's best
    shutil.rmtree(root / "epochs")
    fourth = _train(root, 10, ckpt_keep_limit=1, ckpt_save_best=False)
    assert fourth.restarted is None  # last named a removed epoch: a fresh start
    assert CkptLayout.at(root).list_epochs() == [10]  # the stale best -> epochs/005 pinned nothing
    assert fourth.epochs == [10]
    assert os.readlink(root / "last") == "epochs/010" and not os.path.lexists(root / "best")
    assert read_ckpt_info(root / "last" / "ckpt-info.json").best_epoch is None


def test_a_fresh_start_never_reports_an_older_runs_best(tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    _train(root, 4, [1.0, 0.5, 0.7, 0.8], ckpt_keep_mode="all")
    assert os.readlink(root / "best") == "epochs/002"
    # A fresh start whose epochs never beat its starting value: no best of its own.
    fresh = _train(
        root, 4, [0.9, 0.8, 0.7, 0.6], ckpt_restart_mode="off", ckpt_best_metric_last=0.1, ckpt_keep_limit=1
    )
    assert not os.path.lexists(root / "best")  # the older run's best went with the first commit
    assert fresh.epoch_best == 0 and read_ckpt_info(root / "last" / "ckpt-info.json").best_epoch is None
    assert CkptLayout.at(root).list_epochs() == [4]  # the old best, epoch 2, pinned nothing


def test_a_fresh_start_with_a_best_of_its_own_replaces_the_link(tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    _train(root, 4, [1.0, 0.5, 0.7, 0.8], ckpt_keep_mode="all")
    _train(root, 2, [3.0, 2.0], ckpt_restart_mode="off", ckpt_keep_limit=1)
    assert os.readlink(root / "best") == "epochs/002" and os.readlink(root / "last") == "epochs/002"
    assert read_ckpt_info(root / "best" / "ckpt-info.json").best_metric_last == 2.0  # this run's epoch 2


@pytest.mark.parametrize("save_best", [True, False])
def test_the_restored_best_pins_only_while_save_best_is_on(tmp_path: Path, save_best: bool) -> None:
    root = tmp_path / "ckpts"
    _train(root, 4, [1.0, 0.5, 0.7, 0.8], ckpt_keep_mode="all")
    resumed = _train(root, 6, [1.0, 0.5, 0.7, 0.8, 0.9, 0.95], ckpt_keep_limit=1, ckpt_save_best=save_best)
    assert resumed.restarted is not None and resumed.restarted["epoch"] == 4
    assert resumed.epoch_best == 2  # restored from the checkpoint either way
    assert CkptLayout.at(root).list_epochs() == ([2, 6] if save_best else [6])


def _info(data: dict[str, object]) -> CkptInfo:
    return CkptInfo.from_json({"model_file": "model.bin", **data}, "ckpt-info.json")


def test_restart_takes_a_best_link_only_for_a_checkpoint_candle_wrote(tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    _train(root, 3, ckpt_keep_mode="all")
    ckpt = BytesCkpt({"epochs": 3, "ckpt_directory": str(root)}, logger=None)
    os.unlink(root / "best")
    os.symlink("epochs/002", root / "best")
    ckpt.adopt_restart(_info({"epoch": 3, "best_metric_last": 3.0}))  # CANDLE's keys: no best_epoch
    assert ckpt.epoch_best == 2
    ours = _info({"epoch": 3, "best_metric_last": 3.0, "best_epoch": None, "schema_version": 1})
    ckpt.adopt_restart(ours)  # ours: it had none
    assert ckpt.epoch_best == 0
    os.unlink(root / "best")
    os.symlink("epochs/007", root / "best")  # names an epoch the checkpoint had not reached: not its best
    ckpt.adopt_restart(_info({"epoch": 3, "best_metric_last": 3.0}))
    assert ckpt.epoch_best == 0


def test_unknown_ckpt_keys_are_warned_with_a_suggestion(make_ckpt, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    make_ckpt(logger="DEFAULT", ckpt_keep_limt=1, ckpt_zzz=2, model_name="nt3", dense="1000,500")
    out = capsys.readouterr().out.splitlines()
    warned = [line for line in out if "is not a checkpoint key" in line]
    assert warned == [
        "gParameters: ckpt_keep_limt: is not a checkpoint key and is ignored; did you mean ckpt_keep_limit?",
        "gParameters: ckpt_zzz: is not a checkpoint key and is ignored",
    ]
    assert "did you mean ckpt_keep_limit?" in (tmp_path / "ckpts" / "ckpt.log").read_text()


def test_param_required(make_ckpt) -> None:  # type: ignore[no-untyped-def]
    ckpt = make_ckpt()
    assert ckpt.param("epochs", ParamRequired()) == "10"
    with pytest.raises(ParamError, match="gParameters: model_name: is required"):
        ckpt.param("model_name", ParamRequired())
