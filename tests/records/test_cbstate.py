"""``callbacks.json``'s record, read and written without TensorFlow (`candle_restart.records.cbstate`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from candle_restart.errors import CorruptCheckpointError
from candle_restart.records.cbstate import (
    CallbackEntry,
    CallbackStates,
    Hook,
    Uncarried,
    read_callback_states,
)
from tests.helpers import ROOT

RECORD = CallbackStates(
    hook=Hook("on_epoch_end", 3, {"loss": 0.25, "val_loss": {"$float": "nan"}}),
    callbacks=(
        CallbackEntry(1, "ReduceLROnPlateau", "keras.ReduceLROnPlateau", True, {"wait": 2, "best": 0.5}),
        CallbackEntry(
            2,
            "Mine",
            "protocol",
            False,
            {"peak": {"$float": "-inf"}, "scale": {"$numpy": "float32", "value": 0.5}, "w": {"$array": "2/0"}},
        ),
    ),
    arrays_file="callbacks.npz",
    not_checkpointed=(Uncarried("Tally", ("seen",)),),
)


def test_round_trip_is_strict_json_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "callbacks.json"
    path.write_bytes(RECORD.to_bytes())
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert read_callback_states(path) == RECORD
    assert RECORD.array_members() == ["2/0"]
    assert RECORD.names == ["ReduceLROnPlateau", "Mine"]


def test_a_raw_non_finite_float_is_refused_when_writing() -> None:
    bad = CallbackStates(None, (CallbackEntry(0, "X", "protocol", False, {"best": float("inf")}),))
    with pytest.raises(ValueError):
        bad.to_bytes()


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (lambda d: d.update(schema_version="1"), "schema_version", "must be an integer >= 1, got '1'"),
        (lambda d: d["hook"].update(name="on_batch_begin"), "hook.name", "unknown value 'on_batch_begin'"),
        (lambda d: d["hook"].update(index=-1), "hook.index", "must be an integer >= 0, got -1"),
        (lambda d: d["callbacks"][0].update(replay="yes"), "callbacks.0.replay", "must be true or false"),
        (lambda d: d["callbacks"][0].update(slot=None), "callbacks.0.slot", "must be an integer >= 0"),
        (lambda d: d["callbacks"][1]["state"].update(x={"$float": "big"}), "callbacks.1.state", "$float"),
        (lambda d: d["callbacks"][1]["state"].update(x={"$eval": "1"}), "callbacks.1.state", "unknown tagged"),
        (lambda d: d["hook"]["logs"].update(x={"$array": ""}), "hook.logs", "$array"),
        (lambda d: d.update(arrays_file=None), "arrays_file", "refer to arrays"),
        (lambda d: d.update(arrays_file="../x.npz"), "arrays_file", "inside the checkpoint"),
        (lambda d: d.update(callbacks={}), "callbacks", "must be a list"),
        (lambda d: d.update(not_checkpointed=[{"name": 1}]), "not_checkpointed.0.attributes", "list of strings"),
    ],
)
def test_a_malformed_file_is_one_line_naming_file_and_key(
    tmp_path: Path, change: object, key: str, problem: str
) -> None:
    data = json.loads(RECORD.to_bytes())
    change(data)  # type: ignore[operator]
    path = tmp_path / "callbacks.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CorruptCheckpointError) as caught:
        read_callback_states(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: {key}: ") and problem in message


def test_not_json_and_missing_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "callbacks.json"
    with pytest.raises(CorruptCheckpointError, match="is missing"):
        read_callback_states(path)
    path.write_text("[1, 2")
    with pytest.raises(CorruptCheckpointError, match=str(path)):
        read_callback_states(path)
    path.write_text("[]")
    with pytest.raises(CorruptCheckpointError, match="must be a JSON object, got list"):
        read_callback_states(path)


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    data = json.loads(RECORD.to_bytes())
    data["added_later"] = {"anything": True}
    path = tmp_path / "callbacks.json"
    path.write_text(json.dumps(data))
    assert read_callback_states(path) == RECORD


def test_the_record_loads_no_framework() -> None:
    code = (
        "import sys, candle_restart.records.cbstate; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy', 'torch', 'jax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
