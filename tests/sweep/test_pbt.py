"""Population-based training (``search.pbt``): exploit by a verified checkpoint copy, explore by perturbing.

* bad ``search.pbt`` input: one line naming the key, nothing written;
* the plan depends only on the records: a driver stopped halfway through creating a generation
  creates, when started again, exactly the members an uninterrupted driver creates;
* 4 members over 3 generations through ``sweep run`` (Parsl's local executor), the driver's whole
  process group killed with SIGKILL once the second generation started: ``sweep run`` again ends
  with 12 tasks; every member after the first generation names the checkpoint it started from in
  its records (``origin.json``, the copy's ``ckpt-info.json``), that checkpoint verifies and is the
  parent's byte for byte, the bottom member took the top member's checkpoint with a perturbed
  rate, no copy was made twice, and ``results`` and the report show the lineage.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from candle_restart.ckpt import CkptLayout
from candle_restart.ckpt.restore import verify_checkpoint
from candle_restart.records.ckptinfo import read_ckpt_info
from candle_restart.records.origin import read_origin
from candle_restart.records.search import log_path, read_tells
from candle_restart.sweep import SweepError, parse_sweep
from candle_restart.sweep.pbt import Population
from candle_restart.sweep.search import recorded_trials
from candle_restart.task import TaskDir
from tests.helpers import ROOT, runner_env
from tests.sweep.pbt_trainer import PBT, Stopped, drive, loss, pbt_yaml


@pytest.mark.parametrize(
    ("pbt", "search", "key", "words"),
    [
        ({"population": 1}, {}, "search.pbt.population", "integer >= 2"),
        ({"quantile": 0.7}, {}, "search.pbt.quantile", "in (0, 0.5]"),
        ({"perturb": {"lr": [2.0]}}, {}, "search.pbt.perturb.lr", "must be a key of search.space"),
        ({"perturb": {"learning_rate": []}}, {}, "search.pbt.perturb.learning_rate", "non-empty list"),
        ({"intervall": 2}, {}, "search.pbt.intervall", "did you mean 'interval'"),
        (PBT, {"trials": 4}, "search.trials", "not used with pbt"),
    ],
)
def test_bad_pbt_input_is_one_line_naming_the_key_and_writes_nothing(
    tmp_path: Path, pbt: dict[str, Any], search: dict[str, Any], key: str, words: str
) -> None:
    source = pbt_yaml(tmp_path, pbt, **search)
    with pytest.raises(SweepError) as caught:
        parse_sweep(source)
    message = str(caught.value)
    assert "\n" not in message and f": {key}: " in message and words in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pbt.yaml"]


def _specs(root: Path) -> list[Any]:
    trials = recorded_trials(root, "pbt")
    return [trials[n].load_spec().to_json() | {"created": None, "python_path": None} for n in sorted(trials)]


def test_a_driver_stopped_mid_generation_creates_the_same_members_again(tmp_path: Path) -> None:
    whole = pbt_yaml(tmp_path / "whole")
    drive(whole)
    parted = pbt_yaml(tmp_path / "parted")
    with pytest.raises(Stopped):
        drive(parted, stop_at="pbt: generation 1 member 1 ")
    assert sorted(recorded_trials(tmp_path / "parted" / "runs", "pbt")) == list(range(6))
    drive(parted)  # rebuilt from the directories: makes members 2 and 3 of generation 1, then the rest
    assert _specs(tmp_path / "parted" / "runs") == _specs(tmp_path / "whole" / "runs")
    assert len(_specs(tmp_path / "whole" / "runs")) == 12
    check_lineage(tmp_path / "parted" / "runs", 4, 3, 2)


def _driver(source: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(source)],
        cwd=ROOT,
        env=runner_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: Parsl and the runners die with it below
    )


def _cli(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", *args],
        cwd=ROOT, env=runner_env(), capture_output=True, text=True, check=True,
    ).stdout


def check_lineage(root: Path, population: int, generations: int, interval: int) -> list[dict[str, Any]]:
    """Every member's records name the checkpoint it started from, and that checkpoint verifies and is
    its parent's; the bottom member of each generation took the top one's with a perturbed rate."""
    trials = recorded_trials(root, "pbt")
    assert sorted(trials) == list(range(population * generations))
    seen = []
    for number, task in sorted(trials.items()):
        spec = task.load_spec()
        generation, member = divmod(number, population)
        assert spec.lineage is not None and (spec.lineage["generation"], spec.lineage["member"]) == (generation, member)
        if generation == 0:
            assert spec.parent is None and read_origin(task.path) is None
            continue
        origin = read_origin(task.path)
        assert origin is not None and origin.parent == spec.parent
        parent = TaskDir(root / origin.parent)
        source_member = spec.lineage["from_member"]
        assert isinstance(source_member, int) and trials[(generation - 1) * population + source_member].path == parent.path
        assert origin.epoch == interval * generation
        layout = CkptLayout.at(task.ckpts)
        started = verify_checkpoint(layout.epoch_dir(origin.epoch), True)  # the started checkpoint verifies
        assert started.origin == origin
        source = read_ckpt_info(CkptLayout.at(parent.ckpts).epoch_dir(origin.epoch) / "ckpt-info.json")
        assert (origin.checksum, started.files) == (source.checksum, source.files)  # the parent's, byte for byte
        copies = [e for e in layout.list_epochs() if read_ckpt_info(layout.epoch_dir(e) / "ckpt-info.json").origin]
        assert copies == [origin.epoch]  # copied once
        rates = json.loads((layout.epoch_dir(interval * (generation + 1)) / "model.bin").read_text())
        history = json.loads((CkptLayout.at(parent.ckpts).epoch_dir(origin.epoch) / "model.bin").read_text())
        assert rates[: len(history)] == history  # trained on from the parent's model
        seen.append({"number": number, "exploited": spec.lineage["exploited"], "parent": origin.parent})
    for generation in range(1, generations):
        first = (generation - 1) * population
        rates_before = {m: trials[first + m].load_spec().params["learning_rate"] for m in range(population)}
        before = {m: loss(float(rate), interval * generation) for m, rate in rates_before.items()}  # type: ignore[arg-type]
        worst, best = max(before, key=before.__getitem__), min(before, key=before.__getitem__)
        exploited = [n for n in range(generation * population, (generation + 1) * population)
                     if trials[n].load_spec().lineage["exploited"]]  # type: ignore[index]
        assert exploited == [generation * population + worst]
        spec = trials[exploited[0]].load_spec()
        assert spec.parent == trials[first + best].task_id
        ratio = spec.params["learning_rate"] / trials[first + best].load_spec().params["learning_rate"]  # type: ignore[operator]
        assert any(math.isclose(ratio, f) for f in (0.5, 2.0)), ratio
    return seen


def test_pbt_through_sweep_run_survives_its_driver_killed_and_shows_each_members_start(tmp_path: Path) -> None:
    source = pbt_yaml(tmp_path)
    root = tmp_path / "runs"
    first = _driver(source)
    try:
        deadline = time.monotonic() + 300
        while not any((t.path / "origin.json").exists() for n, t in recorded_trials(root, "pbt").items() if n >= 4):
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the second generation never started"
            time.sleep(0.2)
        os.killpg(first.pid, signal.SIGKILL)  # the driver, Parsl and the runners it started
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    again = _driver(source)
    out, _ = again.communicate(timeout=500)
    assert again.returncode == 0, out
    assert "search: best trial:" in out
    check_lineage(root, 4, 3, 2)
    assert sorted(t.trial for t in read_tells(log_path(root, "pbt"))) == list(range(12))  # each told once
    res = json.loads(_cli("results", str(root), "--sort", "trial", "--format", "json"))
    for row in res["tasks"]:
        origin = read_origin(root / row["task_id"])
        assert row["lineage"] == (None if origin is None else {"parent": origin.parent, "origin": origin.to_json()})
    table = _cli("results", str(root), "--sort", "trial")
    assert "started from" in table and table.count(" epoch 2 ") >= 4 and table.count(" epoch 4 ") >= 4
    assert _cli("report", str(root)) is not None
    html = (root / ".report" / "index.html").read_text()
    assert "started from" in html
    for task in recorded_trials(root, "pbt").values():
        origin = read_origin(task.path)
        if origin is not None:
            assert f"{origin.parent} epoch {origin.epoch}" in html


def test_a_second_driver_of_the_same_population_is_refused(tmp_path: Path) -> None:
    source = pbt_yaml(tmp_path)
    first = Population(parse_sweep(source), lambda _m: None)
    first.open()
    try:
        second = Population(parse_sweep(source), lambda _m: None)
        with pytest.raises(SweepError, match="another driver runs this search"):
            second.open()
    finally:
        first.close()
