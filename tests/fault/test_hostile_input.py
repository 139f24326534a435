"""Hostile input: every answer is a clean one-line error or a correct result, never a traceback,
and nothing on disk changes.  Property-based (hypothesis) over gParameters, ckpt-info.json and
sweep YAML; plus path traversal, links out of the checkpoint root and YAML tags."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from candle_restart.ckpt import CkptLayout, CorruptCheckpointError, ParamError, find_restart, parse_params
from candle_restart.records.ckptinfo import CkptInfo
from candle_restart.records.jsontypes import JsonValue
from candle_restart.sweep import SweepError, expand, parse_sweep
from candle_restart.task.taskdir import TaskError, make_task_id, parse_spec, safe_task_id
from tests.helpers import BytesCkpt, BytesModel, report, trials

KEYS = [
    "epochs",
    "ckpt_restart_mode",
    "ckpt_save_best",
    "ckpt_save_best_metric",
    "ckpt_save_best_mode",
    "ckpt_skip_epochs",
    "ckpt_save_interval",
    "ckpt_checksum",
    "ckpt_keep_mode",
    "ckpt_keep_limit",
    "ckpt_directory",
    "ckpt_best_metric_last",
    "metadata",
    "ckpt_save_seconds",
    "ckpt_signals",
    "ckpt_halt_seconds",
    "ckpt_walltime",
    "ckpt_halt_at",
    "ckpt_save_batches",
    "ckpt_overhead_target",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
EXAMPLES = trials(150)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=6))
def test_any_gparameters_parse_or_fail_with_one_line(params: dict[str, Any]) -> None:
    try:
        parse_params(params)
    except ParamError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("gParameters: ")


@settings(max_examples=EXAMPLES, deadline=None)
@given(JSON)
def test_any_json_is_a_valid_ckpt_info_or_a_clean_error(data: Any) -> None:
    try:
        CkptInfo.from_json(data, Path("ckpt-info.json"))
    except CorruptCheckpointError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("ckpt-info.json")


@settings(max_examples=EXAMPLES, deadline=None)
@given(JSON)
def test_any_task_json_is_a_task_or_a_clean_error(data: Any) -> None:
    try:
        spec = parse_spec(data, "task.json")
    except TaskError as exc:
        assert "\n" not in str(exc)
    else:
        assert safe_task_id(spec.task_id)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=300), JSON)
def test_task_ids_are_always_one_safe_path_component(sweep: str, params: Any) -> None:
    task_id = make_task_id(sweep, {"p": params})
    assert (
        safe_task_id(task_id) and "/" not in task_id and not task_id.startswith(".") and ".." not in task_id
    )


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_any_sweep_yaml_is_a_sweep_or_one_line_and_creates_nothing(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(text)
        try:
            expand(parse_sweep(path))
        except SweepError as exc:
            assert "\n" not in str(exc)
            assert sorted(os.listdir(tmp)) == ["s.yaml"]


def test_yaml_tags_are_never_constructed(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch /tmp/candle-restart-yaml-pwned']\n")
    with pytest.raises(SweepError, match="is not valid YAML"):
        parse_sweep(path)
    assert not Path("/tmp/candle-restart-yaml-pwned").exists()


@pytest.mark.parametrize(
    "value", ["../../etc", "/etc/passwd", "; rm -rf / #", "$(reboot)", "x" * 5000, "\udcff"]
)
def test_hostile_values_stay_data(tmp_path: Path, value: str) -> None:
    """Such values become part of gParameters and task ids, never of a path or a command line."""
    task_id = make_task_id(value, {"name": value})
    assert safe_task_id(task_id) and len(task_id) < 120
    spec: JsonValue = {"task_id": task_id, "params": {"name": value}, "entry": "m:f"}
    assert parse_spec(spec, "task.json").params["name"] == value


def test_last_pointing_outside_or_looping_is_never_followed_for_deletion(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "epochs" / "009").mkdir(parents=True)
    (outside / "epochs" / "009" / "keep").write_text("precious")
    root = tmp_path / "ckpts"
    ckpt = BytesCkpt(
        {"epochs": 10, "ckpt_directory": str(root), "ckpt_keep_limit": 1, "ckpt_save_best": False},
        logger=None,
    )
    ckpt.set_model(BytesModel(b"w"))
    ckpt.ckpt_epoch(0, "-", 1.0)
    os.unlink(root / "last")
    os.symlink(outside / "epochs" / "009", root / "last")  # absolute link out of the root, CANDLE-style
    os.symlink("best", root / "loop")
    os.unlink(root / "best") if (root / "best").is_symlink() else None
    os.symlink("loop", root / "best")
    for epoch in range(1, 4):
        ckpt.ckpt_epoch(epoch, "-", 1.0)
    assert (outside / "epochs" / "009" / "keep").read_text() == "precious"
    assert CkptLayout.at(root).list_epochs() == [4]
    assert find_restart(CkptLayout.at(root), True, lambda _m: None).epoch == 4  # type: ignore[union-attr]
    report("hostile links", deleted_outside=0)


def test_ckpt_info_written_is_strict_json_even_for_odd_metrics(tmp_path: Path) -> None:
    ckpt = BytesCkpt({"epochs": 3, "ckpt_directory": str(tmp_path), "metadata": "ü\u2028"}, logger=None)
    ckpt.set_model(BytesModel(b"w"))
    for epoch, value in enumerate([float("inf"), float("nan"), -0.0]):
        ckpt.ckpt_epoch(epoch, "-", value)
    text = (tmp_path / "last" / "ckpt-info.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
