"""CandleCkpt's framework-neutral behaviour: save decisions, best tracking, links, clean-up, logs."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, ParamError, read_ckpt_info
from tests.helpers import BytesCkpt, BytesModel
from tests.helpers.bytes_ckpt import MakeCkpt


def _run(ckpt: BytesCkpt, values: list[float], direction: str = "-") -> None:
    for i, v in enumerate(values):
        ckpt.model.payload = f"epoch {i + 1}".encode()
        ckpt.ckpt_epoch(i, direction, v)


def test_links_are_relative_and_name_last_and_best(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(ckpt_keep_mode="all")
    _run(ckpt, [3.0, 1.0, 2.0])
    root = tmp_path / "ckpts"
    assert os.readlink(root / "last") == "epochs/003"
    assert os.readlink(root / "best") == "epochs/002"
    info = read_ckpt_info(root / "last" / "ckpt-info.json")
    assert info.epoch == 3 and info.best_metric_last == 1.0 and info.best_epoch == 2
    assert not CkptLayout.at(root).work_dirs()


def test_plus_metrics_can_improve_from_minus_infinity(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(ckpt_save_interval=0 + 100, ckpt_keep_mode="all")
    _run(ckpt, [-5.0, -3.0, -4.0], direction="+")  # CANDLE started every metric at +inf
    assert CkptLayout.at(tmp_path / "ckpts").list_epochs() == [1, 2]
    assert os.readlink(tmp_path / "ckpts" / "best") == "epochs/002"


def test_interval_skip_and_final_epoch(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(
        epochs=7, ckpt_save_best=False, ckpt_save_interval=3, ckpt_skip_epochs=4, ckpt_keep_mode="all"
    )
    _run(ckpt, [1.0] * 7)
    assert CkptLayout.at(tmp_path / "ckpts").list_epochs() == [6, 7]
    assert not (tmp_path / "ckpts" / "best").exists()


def test_strict_json_without_a_best_yet(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(ckpt_save_best=False)
    _run(ckpt, [float("nan")])
    text = (tmp_path / "ckpts" / "last" / "ckpt-info.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    info = json.loads(text)
    assert info["best_metric_last"] is None
    assert info["time_elapsed"] == "__FIRST__" and info["checksum"] == "__DISABLED__"
    for key in ("epoch", "save_best_metric", "model_file", "timestamp", "metadata"):
        assert key in info


def test_keep_policy_spares_best_and_last(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt(ckpt_keep_limit=2)
    _run(ckpt, [1.0, 5.0, 6.0, 7.0, 8.0])
    assert CkptLayout.at(tmp_path / "ckpts").list_epochs() == [1, 4, 5]


def test_clean_never_leaves_epochs_nor_follows_links(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("keep me")
    ckpt = make_ckpt(ckpt_keep_limit=1, ckpt_save_best=False)
    _run(ckpt, [1.0])
    os.symlink(outside, tmp_path / "ckpts" / "epochs" / "000")  # a link posing as a checkpoint
    _run(ckpt, [1.0, 1.0, 1.0])
    ckpt.delete(0)
    assert (outside / "data").read_text() == "keep me"
    assert CkptLayout.at(tmp_path / "ckpts").list_epochs() == [3]


def test_restart_restores_best_bookkeeping(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    _run(make_ckpt(), [3.0, 1.0, 2.0])
    again = make_ckpt()
    model = BytesModel()
    J = again.restart(model)
    assert J is not None and J["epoch"] == 3
    assert model.payload == b"epoch 3"
    assert again.best_metric_last == 1.0 and again.epoch_best == 2
    assert not again.save_check_best(4, "-", 1.5)


def test_restart_modes(make_ckpt: MakeCkpt) -> None:
    from candle_restart.ckpt import NoCheckpointError

    assert make_ckpt().restart(BytesModel()) is None
    with pytest.raises(NoCheckpointError, match="ckpt_restart_mode: is 'required'"):
        make_ckpt(ckpt_restart_mode="required").restart(BytesModel())
    _run(make_ckpt(), [1.0])
    assert make_ckpt(ckpt_restart_mode="off").restart(BytesModel()) is None


def test_second_callback_does_not_write_into_the_first_ones_log(tmp_path: Path) -> None:
    a = BytesCkpt({"epochs": 2, "ckpt_directory": str(tmp_path / "a")})
    b = BytesCkpt({"epochs": 2, "ckpt_directory": str(tmp_path / "b")})
    a.info("line from a")
    b.info("line from b")
    for h in a.logger.handlers + b.logger.handlers:  # type: ignore[union-attr]
        h.flush()
    log_a = (tmp_path / "a" / "ckpt.log").read_text()
    log_b = (tmp_path / "b" / "ckpt.log").read_text()
    assert "line from b" not in log_a and log_a.count("line from a") == 1
    assert log_b.count("line from b") == 1 and log_b.count("Callback initialized.") == 1


def test_log_lines_are_candles(make_ckpt: MakeCkpt, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ckpt = make_ckpt(logger="DEFAULT", ckpt_checksum=True)
    _run(ckpt, [1.0])
    ckpt.restart(BytesModel())
    out = capsys.readouterr().out.splitlines()
    # stdout: CANDLE's empty stream format, the bare message (whole-line matches work) ...
    assert "restarting from epoch: 1" in out and "Callback initialized." in out
    assert any(line.startswith("checksummed: 0.000 MB in ") and line.endswith(" MB/s).") for line in out)
    # ... ckpt.log: timestamped, DEBUG lines too.
    log = (tmp_path / "ckpts" / "ckpt.log").read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CandleCkpt: restarting from epoch: 1$", log, re.M)
    assert "model wrote: 0.000 MB in " in log and "restarting: " in log


def test_timestamped_stdout_is_an_option(make_ckpt: MakeCkpt, capsys) -> None:  # type: ignore[no-untyped-def]
    ckpt = make_ckpt(logger="DEFAULT", ckpt_stdout_format="timestamped")
    _run(ckpt, [1.0])
    out = capsys.readouterr().out.splitlines()
    assert out and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CandleCkpt: ", line) for line in out)
    with pytest.raises(ParamError, match=r"ckpt_stdout_format: must be one of candle\|timestamped"):
        make_ckpt(ckpt_stdout_format="iso")


@pytest.mark.parametrize("make_bad", ["file", "under_file"])
def test_unwritable_directory_fails_before_anything_changes(tmp_path: Path, make_bad: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    target = blocker if make_bad == "file" else blocker / "sub" / "ckpts"
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ParamError, match=r"gParameters: ckpt_directory: .*not a directory"):
        BytesCkpt({"epochs": 1, "ckpt_directory": str(target)})
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_params_create_nothing(tmp_path: Path) -> None:
    with pytest.raises(ParamError):
        BytesCkpt({"epochs": 1, "ckpt_directory": str(tmp_path / "c"), "ckpt_keep_limit": -1})
    assert list(tmp_path.iterdir()) == []


def test_numpy_epoch_and_logger_none(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    import numpy as np

    ckpt = make_ckpt(logger=None)
    ckpt.ckpt_epoch(np.int64(0), "-", np.float32(0.5))
    assert os.readlink(tmp_path / "ckpts" / "last") == "epochs/001"
    assert logging.getLogger("CandleCkpt").handlers == []
