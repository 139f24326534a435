"""CANDLE_RESTART_PARAMS sets the keys CANDLE's parser does not know, validated like gParameters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from candle_restart.ckpt import ParamError, ParamType, read_ckpt_info
from candle_restart.ckpt.envparams import ENV_VAR
from tests.helpers import ROOT, BytesCkpt


def _ckpt(tmp_path: Path, **params: Any) -> BytesCkpt:
    return BytesCkpt({"epochs": 3, "ckpt_directory": str(tmp_path / "ckpts"), **params}, logger=None)


def test_json_form_sets_keys_the_benchmark_did_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, json.dumps({"ckpt_async": False, "ckpt_save_best_mode": "max"}))
    ckpt = _ckpt(tmp_path)
    assert ckpt.settings.async_commit is False and ckpt.settings.save_best_mode == "max"
    assert ckpt.param("ckpt_async", True, ParamType.BOOLEAN) is False  # CANDLE's accessor sees them too


def test_key_value_form_keeps_commas_inside_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "ckpt_signals=USR1,TERM; ckpt_extra_signal=none\nckpt_save_seconds=30")
    settings = _ckpt(tmp_path).settings
    assert settings.signals == ("USR1", "TERM") and settings.save_seconds == 30.0


def test_key_value_form_reads_choices_in_any_case_and_integral_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "ckpt_save_best_mode=MAX; ckpt_keep_mode=Exponential; ckpt_keep_limit=2.0")
    settings = _ckpt(tmp_path).settings
    assert (settings.save_best_mode, settings.keep_mode, settings.keep_limit) == ("max", "exponential", 2)


def test_file_form_and_gparameters_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "ckpt.conf"
    conf.write_text("# extra keys for this benchmark\nckpt_keep_limit = 2\nckpt_checksum = True\n")
    monkeypatch.setenv(ENV_VAR, f"@{conf}")
    ckpt = _ckpt(tmp_path, ckpt_checksum=False, ckpt_metadata=None)
    assert ckpt.keep_limit == 2
    assert ckpt.checksum_enabled is False  # gParameters' own value is never overridden


@pytest.mark.parametrize(
    "value, message",
    [
        ("ckpt_async=perhaps", f"{ENV_VAR}: ckpt_async: must be a boolean (True/False), got 'perhaps'"),
        ('{"ckpt_keep_limit": 0}', f"{ENV_VAR}: ckpt_keep_limit: must be an integer >= 1, got 0"),
        ("ckpt_keep_limit=2.5", f"{ENV_VAR}: ckpt_keep_limit: must be an integer >= 1, got '2.5'"),
        ("ckpt_keep_mode=LOG", f"{ENV_VAR}: ckpt_keep_mode: must be one of linear|exponential|all, got 'LOG'"),
        ("ckpt_asink=False", f"{ENV_VAR}: ckpt_asink: is not a checkpoint key"),
        ("ckpt_async False", f"{ENV_VAR}: 'ckpt_async False' is not key=value"),
        ('{"ckpt_async": }', f"{ENV_VAR}: is not valid JSON"),
        ('["ckpt_async"]', None),  # not an object: starts with '[' so read as key=value, and fails
        ("@MISSING", f"{ENV_VAR} file MISSING: cannot be read"),
    ],
)
def test_bad_values_fail_in_one_line_before_anything_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, message: str | None
) -> None:
    missing = tmp_path / "nothere.conf"
    monkeypatch.setenv(ENV_VAR, value.replace("MISSING", str(missing)))
    with pytest.raises(ParamError) as caught:
        _ckpt(tmp_path)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(ENV_VAR)
    if message is not None:
        assert text.startswith(message.replace("MISSING", str(missing)))
    assert not (tmp_path / "ckpts").exists()


# A benchmark whose parser knows only CANDLE's keys: its gParameters lack ckpt_save_best_mode.
_CANDLE_PARSED = (
    "from candle_restart.examples import regression;"
    "regression.run({'epochs': 1, 'output_dir': 'o', 'ckpt_restart_mode': 'auto', 'ckpt_checksum': False,"
    " 'ckpt_save_best': True, 'ckpt_save_best_metric': 'val_loss', 'ckpt_keep_limit': 1000000})"
)


def test_a_benchmark_process_picks_it_up(tmp_path: Path) -> None:
    """The example benchmark in its own process, given gParameters as CANDLE's parser makes them."""
    env = {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    env[ENV_VAR] = "ckpt_save_best_mode=max; ckpt_metadata=set through the environment"
    proc = subprocess.run(
        [sys.executable, "-c", _CANDLE_PARSED], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = read_ckpt_info(tmp_path / "o" / "ckpts" / "last" / "ckpt-info.json")
    assert info.best_mode == "max" and info.metadata == "set through the environment"
