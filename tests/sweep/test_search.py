"""The adaptive search of a sweep's ``search:`` section: real Optuna, real Parsl, real Keras tasks.

* bad ``search:`` input: one line naming the key, nothing written;
* a sweep without ``search:`` never loads Optuna;
* the rebuild from the run root's records gives the same points as an uninterrupted search
  (random and TPE: both deterministic given their seed and the history replayed);
* a 12-trial TPE search, 3 in flight, through Parsl: a second driver is refused, the whole
  process group of the first is killed with SIGKILL mid-search, ``sweep run`` again ends with
  exactly 12 trials, none duplicated, every checkpoint verifying, and ``results`` names the best;
* the median rule stops a clearly worse trial early: ``pruned`` in every view, never resubmitted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from candle_restart.ckpt import CkptLayout
from candle_restart.ckpt.restore import verify_checkpoint
from candle_restart.cli import main
from candle_restart.records.search import PRUNED_FILE, log_path, read_tells
from candle_restart.sweep import SweepError, parse_sweep
from candle_restart.sweep.search import Search, recorded_trials
from candle_restart.task import TaskDir
from tests.helpers import ROOT, runner_env

optuna = pytest.importorskip("optuna")

SPACE = {"learning_rate": {"log_uniform": [0.001, 0.1]}, "hidden": {"int_uniform": [4, 16]}}


def _yaml(tmp_path: Path, search: dict[str, Any], params: dict[str, Any] | None = None, **top: Any) -> Path:
    config = {
        "name": "hp",
        "run_root": "runs",
        "entry": "candle_restart.examples.regression:run",
        "params": params or {"epochs": 2, "samples": 128, "batch_size": 32},
        "search": search,
        "executor": {"kind": "local", "max_workers": 3},
        **top,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


BASE_SEARCH = {"trials": 4, "metric": "val_loss", "space": SPACE}


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"sampler": "tpee"}, "search.sampler", "did you mean 'tpe'"),
        ({"trails": 3}, "search.trails", "did you mean 'trials'"),
        ({"in_flight": 0}, "search.in_flight", "integer >= 1"),
        ({"direction": "down"}, "search.direction", "minimize, maximize"),
        ({"space": {"lr": {"log_uniform": [0, 1]}}}, "search.space.lr.log_uniform", "low > 0"),
        ({"space": {"lr": {"uniform": [1, 0]}}}, "search.space.lr.uniform", "low < high"),
        ({"space": {"lr": {"normal": [0, 1]}}}, "search.space.lr.normal", "unknown key"),
        ({"prune": {"rule": "medain"}}, "search.prune.rule", "did you mean 'median'"),
        ({"prune": {"rule": "asha", "warmup_epochs": 1}}, "search.prune.warmup_epochs", "unknown key"),
        ({"metric": None}, "search.metric", "must be a string"),
    ],
)
def test_bad_search_input_is_one_line_naming_the_key_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], key: str, words: str
) -> None:
    source = _yaml(tmp_path, {**BASE_SEARCH, **change})
    with pytest.raises(SweepError) as caught:
        parse_sweep(source)
    message = str(caught.value)
    assert "\n" not in message and key in message and words in message, message
    assert main(["sweep", "run", str(source)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
    assert not (tmp_path / "runs").exists()


def test_search_and_vary_together_are_refused(tmp_path: Path) -> None:
    source = _yaml(tmp_path, BASE_SEARCH, vary={"grid": {"hidden": [4, 8]}})
    with pytest.raises(SweepError, match=r"search.*either vary"):
        parse_sweep(source)


def test_a_sweep_without_search_never_loads_optuna(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def run(params):\n    return None\n")
    source = tmp_path / "plain.yaml"
    source.write_text(yaml.safe_dump({"name": "p", "entry": "m:run", "params": {"epochs": 1}, "vary": {"grid": {"a": [1, 2]}}}))
    code = (
        "import sys, candle_restart, candle_restart.cli, candle_restart.sweep.run\n"
        "from candle_restart.sweep import parse_sweep, expand\n"
        f"expand(parse_sweep({str(source)!r}))\n"
        "print('optuna' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=runner_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _objective(values: dict[str, Any]) -> float:
    return (values["learning_rate"] - 0.02) ** 2 + (values["hidden"] - 9) ** 2 / 100


def _drive(search: Search, schedule: list[tuple[str, int]]) -> None:
    """Apply ``schedule`` (ask / tell N) to ``search`` as the driver does, with `_objective` as the value."""
    for action, number in schedule:
        if action == "ask":
            assert search.ask_new().number == number
        else:
            trial = search.trials[number]
            search._log_and_tell(trial, "complete", _objective(trial.values))


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_rebuilt_search_asks_the_same_points_as_an_uninterrupted_one(tmp_path: Path, sampler: str) -> None:
    # 14 trials, 3 in flight: TPE's model takes over after its 10 random startup trials.
    schedule = [("ask", 0), ("ask", 1), ("ask", 2)]
    for n in range(11):
        schedule += [("tell", n), ("ask", n + 3)]
    block = {**BASE_SEARCH, "trials": 14, "in_flight": 3, "sampler": sampler, "seed": 5}
    whole = Search(parse_sweep(_yaml(tmp_path / "whole", block)), log=lambda _m: None)
    whole.open()
    _drive(whole, schedule)
    whole.close()
    split = 12  # the driver dies here: trials 0..6 asked, 0..4 told
    parted = parse_sweep(_yaml(tmp_path / "parted", block))
    first = Search(parted, log=lambda _m: None)
    first.open()
    _drive(first, schedule[:split])
    first.close()
    second = Search(parted, log=lambda _m: None)
    second.open()  # a fresh study, rebuilt from the directories and the log
    assert second.replayed == 7 and second.diverged == 0 and second.in_flight() == 2
    _drive(second, schedule[split:])
    second.close()
    points = [whole.trials[n].values for n in range(14)]
    assert [second.trials[n].values for n in range(14)] == points
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 14


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


def _wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _cli_json(*args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", *args],
        cwd=ROOT,
        env=runner_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_tpe_search_survives_its_driver_killed_with_sigkill(tmp_path: Path) -> None:
    # A short backoff: a trial submitted by the killed driver whose runner never started is retried.
    search = {**BASE_SEARCH, "trials": 12, "in_flight": 3, "sampler": "tpe", "seed": 3}
    source = _yaml(tmp_path, search, restart={"backoff_seconds": 1})
    root = tmp_path / "runs"
    log = log_path(root, "hp")
    first = _driver(source)
    try:
        _wait_for(lambda: len(read_tells(log)) >= 2, 300, "two trials told")
        second = subprocess.run(
            [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(source)],
            cwd=ROOT,
            env=runner_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0 and "another driver runs this search" in second.stderr, second.stderr
        os.killpg(first.pid, signal.SIGKILL)  # the driver, Parsl and the runners it started
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    asked_before = len(recorded_trials(root, "hp"))
    assert 2 <= asked_before < 12
    again = _driver(source)
    out, _ = again.communicate(timeout=500)
    assert again.returncode == 0, out
    assert f"{asked_before} replayed from its records" in out
    trials = recorded_trials(root, "hp")
    assert sorted(trials) == list(range(12))
    points = [json.dumps({k: t.load_spec().params[k] for k in SPACE}, sort_keys=True) for t in trials.values()]
    assert len(set(points)) == 12  # none asked twice
    tells = read_tells(log)
    assert sorted(t.trial for t in tells) == list(range(12))  # each told once
    for task in trials.values():
        layout = CkptLayout.at(task.ckpts)
        assert layout.list_epochs(), task.task_id
        for epoch in layout.list_epochs():
            verify_checkpoint(layout.epoch_dir(epoch), True)
    res = _cli_json("results", str(root), "--format", "json")
    assert [t["state"] for t in res["tasks"]] == ["completed"] * 12
    best = min((t for t in tells if t.value is not None), key=lambda t: t.value or 0.0)
    assert res["best"] == trials[best.trial].task_id
    ordered = _cli_json("results", str(root), "--sort", "trial", "--format", "json")
    assert [t["task_id"] for t in ordered["tasks"]] == [trials[n].task_id for n in range(12)]
    shown = subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", "sweep", "status", str(source)],
        cwd=ROOT, env=runner_env(), capture_output=True, text=True, check=True,
    ).stdout
    assert "12 of 12 trials asked" in shown and shown.count("completed") >= 12


def test_the_median_rule_prunes_a_clearly_worse_trial(tmp_path: Path) -> None:
    # Random sampler, seed 10: trial 0 gets the good rate, trial 1 the useless one (checked below).
    search = {
        "trials": 2,
        "in_flight": 1,
        "sampler": "random",
        "seed": 10,
        "metric": "val_loss",
        "space": {"learning_rate": {"choice": [0.03, 1e-7]}},
        "prune": {"rule": "median", "warmup_epochs": 1, "startup_trials": 1},
    }
    params = {"epochs": 40, "samples": 256, "batch_size": 32}
    source = _yaml(tmp_path, search, params)
    root = tmp_path / "runs"
    run = _driver(source)
    out, _ = run.communicate(timeout=500)
    assert run.returncode == 0, out
    trials = recorded_trials(root, "hp")
    assert [trials[n].load_spec().params["learning_rate"] for n in (0, 1)] == [0.03, 1e-7]
    bad = trials[1]
    assert (bad.path / PRUNED_FILE).is_file()
    statuses = {s["task_id"]: s for s in _cli_json("status", str(root), "--json")["tasks"]}
    assert statuses[bad.task_id]["state"] == "pruned"
    assert statuses[trials[0].task_id]["state"] == "completed"
    assert statuses[bad.task_id]["epoch"] < 40  # stopped early, with its checkpoints kept
    layout = CkptLayout.at(bad.ckpts)
    for epoch in layout.list_epochs():
        verify_checkpoint(layout.epoch_dir(epoch), True)
    assert statuses[bad.task_id]["generation"] == 1  # never resubmitted
    res = {t["task_id"]: t for t in _cli_json("results", str(root), "--format", "json")["tasks"]}
    assert res[bad.task_id]["state"] == "pruned"
    assert [t.state for t in read_tells(log_path(root, "hp"))] == ["complete", "pruned"]
    assert main(["resume", str(root)]) == 0  # a later resume leaves it alone
    recorded, _ = TaskDir(bad.path).load_state()
    assert recorded is not None and recorded.status == "pruned"  # state.json, once its runner stopped
    assert main(["report", str(root)]) == 0
    html = (root / ".report" / "index.html").read_text()
    assert "Search history" in html and "pruned" in html


def test_a_pruned_task_is_terminal_from_either_record(tmp_path: Path) -> None:
    """``pruned.json`` (written before the stop) or ``state.json``'s ``pruned``: never resubmitted."""
    from candle_restart.coordinator import Policy
    from candle_restart.coordinator.policy import decide
    from candle_restart.coordinator.resume import ResumeOutcome
    from candle_restart.coordinator.states import classify
    from candle_restart.records.search import PruneRecord
    from tests.helpers import toy_task

    by_state = toy_task(tmp_path / "run", "a")
    by_state.write_state({"status": "pruned", "reason": "val_loss=9 at epoch 2"})
    by_marker = toy_task(tmp_path / "run", "b")
    by_marker.write_state({"status": "preempted", "reason": "stopped on a signal"})
    (by_marker.path / PRUNED_FILE).write_bytes(PruneRecord("val_loss=9 at epoch 2", 2, "t").to_bytes())
    for task in (by_state, by_marker):
        status = classify(task, {})
        decision = decide(status, Policy())
        assert (status.state, decision.action) == ("pruned", "none"), status
        assert ResumeOutcome(status, decision).final and "val_loss=9" in status.reason
