"""Population-based training of a tiny Keras model: 4 members over 3 generations, trained by the
runner in this process (one TensorFlow import), driven as ``sweep run`` drives it.

Every member after the first generation shows in its records (``origin.json``, ``task.json``'s
``parent`` and ``lineage``) and in ``results`` and the report which checkpoint it started from;
that checkpoint verifies (with its CRC-32s) and is its parent's; the bottom member took the top
member's checkpoint.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import keras  # noqa: F401  # the regression example's model
import pytest

from candle_restart.ckpt import CkptLayout
from candle_restart.ckpt.restore import verify_checkpoint
from candle_restart.cli import main
from candle_restart.records.ckptinfo import read_ckpt_info
from candle_restart.records.origin import read_origin
from candle_restart.sweep.search import epoch_values, recorded_trials
from tests.sweep.pbt_trainer import PBT, drive, pbt_yaml


def test_a_keras_population_shows_which_checkpoint_each_member_started_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = {"ckpt_checksum": True, "hidden": 4}
    source = pbt_yaml(tmp_path, {**PBT, "interval": 1}, "candle_restart.examples.regression:run", params)
    drive(source)
    root = tmp_path / "runs"
    trials = recorded_trials(root, "pbt")
    assert sorted(trials) == list(range(12))
    for generation in (1, 2):
        first = (generation - 1) * 4
        before = {m: epoch_values(trials[first + m], "val_loss")[generation] for m in range(4)}
        worst, best = max(before, key=before.__getitem__), min(before, key=before.__getitem__)
        for m in range(4):
            task = trials[generation * 4 + m]
            spec, origin = task.load_spec(), read_origin(task.path)
            assert origin is not None and spec.lineage is not None
            assert spec.lineage["exploited"] == (m == worst)
            assert origin.parent == trials[first + (best if m == worst else m)].task_id == spec.parent
            started = verify_checkpoint(CkptLayout.at(task.ckpts).epoch_dir(generation), True)  # verifies, CRCs too
            source_info = read_ckpt_info(CkptLayout.at(trials[first].path.parent / origin.parent / "ckpts").epoch_dir(generation) / "ckpt-info.json")
            assert started.origin == origin and origin.epoch == generation
            assert origin.checksum == source_info.checksum and (origin.checksum or "").isdigit()
            assert started.files == source_info.files
    capsys.readouterr()
    assert main(["results", str(root), "--sort", "trial", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["tasks"]
    assert [r["lineage"] is None for r in rows] == [True] * 4 + [False] * 8
    assert [r["lineage"]["origin"]["epoch"] for r in rows[4:]] == [1] * 4 + [2] * 4
    assert main(["report", str(root)]) == 0
    html = (root / ".report" / "index.html").read_text()
    for task in (trials[n] for n in range(4, 12)):
        origin = read_origin(task.path)
        assert origin is not None and escape(origin.describe()) in html
