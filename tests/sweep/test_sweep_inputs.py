"""The sweep's input side: no path traps, no silent typos, the sweep's restart policy kept.

Runners run as real child processes (`python -m candle_restart.task`) with only the
project on PYTHONPATH, so a module next to the YAML is found through ``task.json``'s
``python_path``, not through the test's own import path.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from candle_restart.ckpt.envparams import CKPT_DIRECTORY_ENV, OUTPUT_DIR_ENV, with_environment
from candle_restart.cli import main
from candle_restart.coordinator import Policy
from candle_restart.coordinator.states import TaskStatus
from candle_restart.sweep import SweepError, expand, parse_sweep
from candle_restart.sweep.run import eta, progress_counts, run_root_policy
from tests.helpers import run_runner, state

ENTRY_MODULE = """\
import json, os

def run(params):
    with open(os.path.join(params["output_dir"], "seen.json"), "w") as f:
        json.dump({"params": params, "env": os.environ.get("CANDLE_RESTART_CKPT_DIRECTORY")}, f)

if __name__ == "__main__":
    run({"output_dir": "."})
"""

# A plain argparse script: it knows its own flags only, and takes the directories from the environment.
PLAIN_SCRIPT = """\
import argparse, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("data")
parser.add_argument("words", nargs="*")
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
ckpts = os.environ["CANDLE_RESTART_CKPT_DIRECTORY"]
os.makedirs(ckpts, exist_ok=True)
with open(os.path.join(ckpts, "seen.txt"), "w") as f:
    f.write(open(args.data).read() + " " + str(args.epochs) + " " + os.environ["CANDLE_RESTART_OUTPUT_DIR"])
"""


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def test_entry_module_next_to_the_yaml_runs_without_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "mybench.py").write_text(ENTRY_MODULE)
    sweep = parse_sweep(_yaml(tmp_path, "name: s\nrun_root: runs\nentry: mybench:run\nparams: {epochs: 1}\n"))
    (task,) = expand(sweep).tasks
    assert json.loads(task.task_file.read_text())["python_path"] == [str(tmp_path)]
    assert "mybench" not in sys.modules  # found by parsing, never imported at parse time
    code, err = run_runner(task.path)
    assert code == 0, err
    seen = json.loads((task.path / "output" / "seen.json").read_text())
    assert seen["params"]["ckpt_directory"] == seen["env"] == str(task.ckpts)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("entry: mybench:rn\n", "has no 'rn'; did you mean 'run'?"),
        ("entry: mybenhc:run\n", "module 'mybenhc' cannot be imported (looked in"),
        ("entry: mybench:run\nparms: {epochs: 1}\n", "parms: unknown key; did you mean 'params'?"),
        ("entry: mybench:run\nrestart: {max_failure: 1}\n", "unknown key; did you mean 'max_failures'?"),
        (
            "entry: mybench:run\nexecutor: {kind: slurm, slurm: {walltme: '1:00:00'}}\n",
            "executor.slurm.walltme: unknown key; did you mean 'walltime'?",
        ),
        (
            "entry: mybench:run\nexecutor: {kind: slurm, slurm: {walltime: 2:00:00}}\n",
            "YAML read 2:00:00 as the number 7200: quote it: '2:00:00'",
        ),
        ("entry: mybench:run\ndir_flags: false\n", "dir_flags: applies to a 'command' only"),
        (f"command: [{sys.executable}, trian.py]\n", "'trian.py' does not exist in"),
    ],
)
def test_mistakes_get_one_line_with_a_hint(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "mybench.py").write_text(ENTRY_MODULE)
    path = _yaml(tmp_path, "name: s\nrun_root: runs\n" + text)
    with pytest.raises(SweepError) as err:
        parse_sweep(path)
    message = str(err.value)
    assert message.startswith(f"{path}:") and "\n" not in message and problem in message, message


def test_plain_argparse_command_gets_paths_resolved_and_directories_in_the_environment(
    tmp_path: Path,
) -> None:
    (tmp_path / "train.py").write_text(PLAIN_SCRIPT)
    (tmp_path / "data.txt").write_text("DATA")
    text = (
        f"name: s\nrun_root: runs\ncommand: [{sys.executable}, train.py, data.txt, adam]\n"
        "params: {epochs: 3}\n"
    )
    (with_flags,) = expand(parse_sweep(_yaml(tmp_path, text))).tasks
    spec = json.loads(with_flags.task_file.read_text())
    assert spec["command"] == [sys.executable, str(tmp_path / "train.py"), str(tmp_path / "data.txt"), "adam"]

    code, _ = run_runner(with_flags.path)  # argparse refuses the injected --ckpt_directory=
    record = state(with_flags.path)
    assert code == 2 and record["status"] == "bad_input" and record["exit_code"] == 2
    assert record["reason"].startswith("the command exited 2: ")
    assert "unrecognized arguments: " in record["reason"] and "dir_flags: false" in record["reason"]

    fixed = text.replace("runs\n", "runs\ndir_flags: false\n")  # the fix reaches the existing task
    (plain,) = expand(parse_sweep(_yaml(tmp_path, fixed))).tasks
    assert plain.path == with_flags.path and json.loads(plain.task_file.read_text())["dir_flags"] is False
    code, err = run_runner(plain.path)
    assert code == 0, err
    assert (plain.ckpts / "seen.txt").read_text() == f"DATA 3 {plain.path / 'output'}"


def test_the_runners_directories_fill_in_what_gparameters_lacks() -> None:
    env = {CKPT_DIRECTORY_ENV: "/t/ckpts", OUTPUT_DIR_ENV: "/t/out"}
    assert with_environment({"epochs": 1}, env) == {
        "epochs": 1,
        "ckpt_directory": "/t/ckpts",
        "output_dir": "/t/out",
    }
    assert with_environment({"epochs": 1, "ckpt_directory": "mine"}, env)["ckpt_directory"] == "mine"


def test_missing_sbatch_is_one_line_and_exit_2_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _yaml(
        tmp_path,
        "name: s\nrun_root: runs\nentry: candle_restart.examples.regression:run\nexecutor: {kind: slurm}\n",
    )
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # a machine without Slurm's commands
    for argv in (["slurm", "submit", str(path)], ["sweep", "run", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not found: sbatch, squeue" in err and str(path) in err
        assert not (tmp_path / "runs").exists()


def test_resume_uses_the_sweeps_restart_policy_unless_flags_say_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _yaml(
        tmp_path,
        "name: s\nrun_root: runs\nentry: candle_restart.examples.regression:run\n"
        "params: {epochs: 1}\nrestart: {max_failures: 5, max_preemptions: 7}\n",
    )
    expand(parse_sweep(path))
    root = tmp_path / "runs"
    assert json.loads((root / ".sweep-s.json").read_text())["restart"] == {
        "max_failures": 5,
        "max_preemptions": 7,
    }
    logged: list[str] = []
    policy = run_root_policy(
        root, logged.append, max_failures=None, max_preemptions=None, backoff_seconds=None
    )
    assert (policy.max_failures, policy.max_preemptions, policy.backoff_seconds) == (
        5,
        7,
        Policy.backoff_seconds,
    )
    assert run_root_policy(root, logged.append, max_failures=1).max_failures == 1
    assert logged == [
        "restart policy from .sweep-s.json: max_failures=5, max_preemptions=7",
        "restart policy from .sweep-s.json: max_preemptions=7",
    ]
    assert main(["resume", str(root), "--dry-run", "--max-preemptions", "3"]) == 0
    assert "restart policy from .sweep-s.json: max_failures=5\n" in capsys.readouterr().out

    other = json.loads((root / ".sweep-s.json").read_text())
    (root / ".sweep-t.json").write_text(json.dumps({**other, "name": "t", "restart": {"max_failures": 1}}))
    logged.clear()
    assert run_root_policy(root, logged.append, max_preemptions=3) == Policy(max_preemptions=3)
    assert len(logged) == 1 and re.match(
        r"warning: .*\.sweep-t\.json: restart: differs from \.sweep-s\.json's", logged[0]
    )


def test_progress_counts_match_the_table_and_eta_counts_only_this_run() -> None:
    statuses = [
        TaskStatus("a", "completed", "", preemptions=2),
        TaskStatus("b", "completed", ""),
        TaskStatus("c", "running", "", failures=1),
        TaskStatus("d", "queued", ""),
    ]
    line = progress_counts(statuses, 0)
    assert line.startswith("4 tasks: 2 completed, 1 queued, 1 running;") or line.startswith(
        "4 tasks: 1 queued, 1 running, 2 completed;"
    ), line
    assert "2 preemptions and 1 failures so far" in line
    assert eta(statuses, 0.0, 0, done_before=2) == "-"  # both were completed by an earlier run
    assert eta(statuses, 0.0, 0, done_before=1).endswith(" s")


@pytest.mark.parametrize(
    "extra, message",
    [
        ("restart: {backoff_seconds: .inf}", "restart.backoff_seconds: must be a finite number >= 0, got inf"),
        ("restart: {backoff_seconds: .nan}", "restart.backoff_seconds: must be a finite number >= 0, got nan"),
        ("params: {epochs: 2, lr: .nan}", "params.lr: must be a finite number, got nan"),
        ("vary: {grid: {lr: [0.1, -.inf]}}", "vary.grid.lr.1: must be a finite number, got -inf"),
        ("executor: {kind: slurm, slurm: {throttle: " + "9" * 30 + "}}", "executor.slurm.throttle: must be an integer below"),
        ("vary: {grid: {n: [" + "9" * 5000 + "]}}", ":5: has an integer of 5000 digits (at most 100)"),
    ],
)
def test_non_finite_and_huge_numbers_are_refused_in_one_line(tmp_path: Path, extra: str, message: str) -> None:
    (tmp_path / "t.py").write_text("")
    source = _yaml(tmp_path, f"name: s\nrun_root: runs\ncommand: [python3, t.py]\nparams: {{epochs: 2}}\n{extra}\n")
    with pytest.raises(SweepError) as err:
        parse_sweep(source)
    assert message in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 400
    assert not (tmp_path / "runs").exists()
