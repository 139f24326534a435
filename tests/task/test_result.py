"""What the training returned, recorded in state.json; a folder that is not a task is left untouched."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from candle_restart.records.jsontypes import JsonValue
from candle_restart.records.taskstate import MetricSummary
from candle_restart.task import create_task, run_task
from candle_restart.task.result import jsonable, metric_summary
from tests.helpers import state


@dataclass
class Point:
    x: int
    y: float


def test_json_values_are_kept_and_the_rest_converted_or_dropped_with_a_note() -> None:
    plain = {"loss": 0.5, "ok": True, "tags": ["a", None], "nested": {"n": 3}}
    assert jsonable(plain) == (plain, None)
    value, note = jsonable(
        {
            "acc": np.float32(0.75),
            "curve": np.arange(3),
            "when": Point(1, 2.5),
            "pair": (1, 2),
            7: "seven",
            "model": object(),
            "nan": float("nan"),
            "huge": 10**150,
        }
    )
    assert value == {
        "acc": 0.75,
        "curve": [0, 1, 2],
        "when": {"x": 1, "y": 2.5},
        "pair": [1, 2],
        "7": "seven",
        "nan": None,
        "huge": str(10**150),
    }
    assert note is not None and "dropped model: a object is not JSON-able" in note
    assert "converted acc: numpy float32 as a number" in note
    json.dumps(value, allow_nan=False)  # strict JSON
    assert jsonable(object()) == (None, "dropped result: a object is not JSON-able")
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    value, note = jsonable(deep)
    assert note is not None and "nested deeper than 32" in note
    value, note = jsonable(np.zeros(60_000))  # 300 KB as JSON
    assert value is None and note is not None
    assert note.endswith("dropped result: larger than 256 KiB as JSON (write it to output/)")


def test_metric_summary_takes_the_final_value_from_the_result() -> None:
    info: dict[str, JsonValue] = {
        "save_best_metric": "val_loss",
        "best_mode": "min",
        "best_metric_last": 0.2,
        "best_epoch": 4,
    }
    summary = metric_summary(info, {"val_loss": [0.5, 0.3, 0.25]})
    assert summary is not None and summary.to_json() == {
        "name": "val_loss",
        "mode": "min",
        "best": 0.2,
        "best_epoch": 4,
        "final": 0.25,
    }
    assert metric_summary(info, None) == MetricSummary("val_loss", "min", 0.2, 4, None)
    assert metric_summary({}, {"val_loss": 1.0}) is None  # no checkpointed metric to name


def test_the_runner_records_the_result_and_the_metric(tmp_path: Path) -> None:
    task = create_task(tmp_path / "run", {"epochs": 4}, entry="tests.coordinator.toy:returning")
    assert run_task(task.path) == 0
    recorded = state(task.path)
    assert recorded["status"] == "completed"
    assert recorded["result"] == {"val_loss": 0.25, "curve": [1.0, 0.5, pytest.approx(1 / 3), 0.25], "n": 4}
    assert "dropped model: a BytesModel is not JSON-able" in recorded["result_note"]
    metric = recorded["metric"]
    assert metric["name"] == "val_loss" and metric["best_epoch"] == 4
    assert math.isclose(metric["best"], 0.25) and metric["final"] == 0.25


def test_run_on_a_folder_that_is_not_a_task_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from candle_restart.cli import main

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("mine")
    assert main(["run", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"candle-restart run: {folder}: not a task directory (no task.json); nothing written\n"
    )
    assert [p.name for p in folder.iterdir()] == ["readme.txt"]
