"""A task's warm start from its parent's checkpoint (``task.json``'s ``parent``, a sweep's ``parent:``).

* the copy goes through the commit protocol: killed with SIGKILL mid-copy it leaves nothing
  published (and the next attempt copies afresh); killed after its commit it leaves a whole
  verified checkpoint, and the next attempt only writes ``origin.json`` (no second copy);
* bad input (a parent that does not exist, a cycle of parents, a parent without a checkpoint)
  is one line naming the file and the key ``parent``, and writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from candle_restart.ckpt import CkptLayout
from candle_restart.ckpt.restore import verify_checkpoint
from candle_restart.cli import main as cli_main
from candle_restart.records.ckptinfo import read_ckpt_info
from candle_restart.records.origin import ORIGIN_FILE, read_origin
from candle_restart.sweep import SweepError, expand, parse_sweep
from candle_restart.task import TaskDir, create_task, run_task
from tests.helpers import ROOT, runner_env
from tests.helpers.files import tree

TRAINER = "tests.sweep.pbt_trainer:run"


def _parent(root: Path, epochs: int = 2) -> TaskDir:
    """A task trained ``epochs`` epochs in this process (the framework-free trainer: real commits)."""
    task = create_task(root, {"epochs": epochs, "learning_rate": 0.01}, entry=TRAINER, sweep="base")
    assert run_task(task.path) == 0
    return task


def _warm(child: TaskDir, pause: str | None) -> subprocess.Popen[str]:
    """`warm_start` of ``child`` in a process of its own, stopping itself at ``pause``."""
    code = (
        "import sys\n"
        "from candle_restart.task import TaskDir\n"
        "from candle_restart.task.warm import warm_start\n"
        "task = TaskDir(sys.argv[1])\n"
        "print(warm_start(task, task.load_spec().parent, print))\n"
    )
    env = {**runner_env(), **({"CANDLE_RESTART_TEST_PAUSE_AT": pause} if pause else {})}
    return subprocess.Popen([sys.executable, "-c", code, str(child.path)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _kill_when_stopped(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc`` once it stopped itself at its fail-point (its state is T)."""
    deadline = time.monotonic() + 60
    while True:
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            break
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the copy never reached its fail-point"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_copy_killed_mid_copy_publishes_nothing_and_the_next_attempt_copies_afresh(tmp_path: Path) -> None:
    parent = _parent(tmp_path)
    child = create_task(tmp_path, {"epochs": 4, "learning_rate": 0.1}, entry=TRAINER, sweep="child",
                        parent=parent.task_id)
    proc = _warm(child, "warm-copy")
    _kill_when_stopped(proc)
    layout = CkptLayout.at(child.ckpts)
    assert [w.name.startswith("work-warm-") for w in layout.work_dirs()] == [True]  # the half copy
    assert layout.list_epochs() == [] and not layout.last.is_symlink()  # nothing published
    assert not (child.path / ORIGIN_FILE).exists()
    again = _warm(child, None)
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0, out
    assert layout.work_dirs() == []  # the dead copy went with the new one's begin
    assert layout.list_epochs() == [2] and layout.linked_epoch(layout.last) == 2
    info = verify_checkpoint(layout.epoch_dir(2), True)
    parent_info = read_ckpt_info(CkptLayout.at(parent.ckpts).epoch_dir(2) / "ckpt-info.json")
    assert info.origin is not None and info.origin == read_origin(child.path)
    assert (info.origin.parent, info.origin.epoch, info.origin.checksum) == (parent.task_id, 2, parent_info.checksum)
    assert info.files == parent_info.files  # every byte as the parent committed it
    assert run_task(child.path) == 0  # trains on from the copy: epochs 3 and 4
    payload = (layout.epoch_dir(4) / "model.bin").read_text()
    assert payload == "[0.01, 0.01, 0.1, 0.1]"


def test_a_copy_killed_after_its_commit_is_whole_and_never_copied_twice(tmp_path: Path) -> None:
    parent = _parent(tmp_path)
    child = create_task(tmp_path, {"epochs": 3, "learning_rate": 0.1}, entry=TRAINER, sweep="child",
                        parent=parent.task_id)
    proc = _warm(child, "warm-committed")
    _kill_when_stopped(proc)
    layout = CkptLayout.at(child.ckpts)
    assert layout.list_epochs() == [2] and layout.work_dirs() == []
    first = verify_checkpoint(layout.epoch_dir(2), True)
    assert not (child.path / ORIGIN_FILE).exists()  # killed before it
    again = _warm(child, None)
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0, out
    assert "warm start: copied" not in out  # no second copy
    assert read_ckpt_info(layout.epoch_dir(2) / "ckpt-info.json") == first
    assert read_origin(child.path) == first.origin


def _sweep(tmp_path: Path, parent: str) -> Path:
    config = {"name": "tune", "run_root": "runs", "entry": TRAINER, "params": {"epochs": 3},
              "vary": {"grid": {"learning_rate": [0.1, 0.01]}}, "parent": parent}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_sweep_warm_started_from_a_parent_task(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    parent = _parent(root)
    tasks = expand(parse_sweep(_sweep(tmp_path, parent.task_id))).tasks
    for task in tasks:
        assert task.load_spec().parent == parent.task_id
        assert run_task(task.path) == 0
        origin = read_origin(task.path)
        assert origin is not None and (origin.parent, origin.epoch) == (parent.task_id, 2)
        assert verify_checkpoint(CkptLayout.at(task.ckpts).epoch_dir(2), True).origin == origin


@pytest.mark.parametrize("case", ["missing", "cycle", "no checkpoint", "bad name"])
def test_a_bad_parent_is_one_line_naming_the_key_and_writes_nothing(tmp_path: Path, case: str) -> None:
    root = tmp_path / "runs"
    if case == "missing":
        parent, words = "base-000000000000", "is not a task directory"
    elif case == "cycle":  # a chain of parents that comes back: a -> b -> a
        a = create_task(root, {"epochs": 1}, entry=TRAINER, sweep="a", parent="b-1")
        create_task(root, {"epochs": 1}, entry=TRAINER, task_id="b-1", parent=a.task_id)
        parent, words = a.task_id, "a cycle of parents"
    elif case == "no checkpoint":
        parent, words = create_task(root, {"epochs": 1}, entry=TRAINER, sweep="p").task_id, "no checkpoint that verifies"
    else:
        parent, words = "../elsewhere", "must be a task id in run_root or an absolute task directory"
    source = _sweep(tmp_path, parent)
    before = tree(tmp_path)
    with pytest.raises(SweepError) as caught:
        expand(parse_sweep(source))
    message = str(caught.value)
    assert "\n" not in message and str(source) in message and ": parent: " in message and words in message, message
    assert tree(tmp_path) == before  # nothing written


def test_a_task_whose_parent_went_away_is_bad_input_with_one_line(tmp_path: Path) -> None:
    child = create_task(tmp_path, {"epochs": 2, "learning_rate": 0.1}, entry=TRAINER, sweep="c", parent="gone-1")
    assert run_task(child.path) == 2  # bad input: never retried
    state, _ = child.load_state()
    assert state is not None and state.status == "bad_input"
    assert f"{child.task_file}: parent: parent 'gone-1' is not a task directory" in (state.reason or "")
    assert not child.ckpts.exists() or CkptLayout.at(child.ckpts).list_epochs() == []


def _level(tmp_path: Path, name: str, vary: dict[str, object], parent: object = None, epochs: int = 2) -> Path:
    """A sweep YAML of one level of a leave-out tree, in ``tmp_path``, its run root ``runs``."""
    config: dict[str, object] = {"name": name, "run_root": "runs", "entry": TRAINER, "params": {"epochs": epochs},
                                 "vary": vary}
    if parent is not None:
        config["parent"] = parent
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _trained_first_level(tmp_path: Path) -> dict[int, str]:
    """Stage 1: one task per fold (each fold its own learning rate), trained; task id by fold."""
    folds = [{"fold": 1, "learning_rate": 0.1}, {"fold": 2, "learning_rate": 0.2}]
    tasks = expand(parse_sweep(_level(tmp_path, "stage1", {"list": folds}))).tasks
    for task in tasks:
        assert run_task(task.path) == 0
    return {int(str(t.load_spec().params["fold"])): t.task_id for t in tasks}


def test_each_task_of_a_tree_level_starts_from_the_parent_its_parameters_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``parent: {sweep, match}``: the next level of a leave-out tree, one YAML for all its tasks."""
    first = _trained_first_level(tmp_path)
    stage2 = _level(tmp_path, "stage2", {"grid": {"fold": [1, 2], "learning_rate": [0.01, 0.02]}},
                    {"sweep": "stage1", "match": ["fold"]}, epochs=3)
    tasks = expand(parse_sweep(stage2)).tasks
    assert len(tasks) == 4
    for task in tasks:
        params = task.load_spec().params
        parent = first[int(str(params["fold"]))]
        assert task.load_spec().parent == parent
        assert run_task(task.path) == 0
        origin = read_origin(task.path)
        assert origin is not None and (origin.parent, origin.epoch) == (parent, 2)
        history = json.loads((CkptLayout.at(task.ckpts).epoch_dir(3) / "model.bin").read_text())
        parent_rate = 0.1 if params["fold"] == 1 else 0.2
        assert history == [parent_rate, parent_rate, params["learning_rate"]]  # the parent's two epochs, then its own
    # results' CSV names each task's parent and the epoch it began from (stage 1's rows: none)
    capsys.readouterr()  # the trainings' own lines
    assert cli_main(["results", str(tmp_path / "runs"), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6
    for row in rows:
        fold = int(row["params.fold"])
        if row["task_id"].startswith("stage2-"):
            assert (row["parent"], row["parent_epoch"]) == (first[fold], "2")
        else:
            assert (row["parent"], row["parent_epoch"]) == ("", "")


@pytest.mark.parametrize(
    ("parent", "key", "words"),
    [
        ({"sweep": "stage1", "match": ["learning_rate"]}, "parent.match", "no task of sweep 'stage1' has learning_rate=0.5"),
        ({"sweep": "stage1", "match": ["subset"]}, "parent.match", "task 0 has no parameter 'subset'"),
        ({"sweep": "nothere", "match": ["fold"]}, "parent.sweep", "no task of sweep 'nothere' in "),
        ({"sweep": "stage1", "matches": ["fold"]}, "parent.matches", "unknown key; did you mean 'match'?"),
        ({"sweep": "stage1", "match": []}, "parent.match", "must be a non-empty list of parameter names"),
        ({"sweep": "stage2", "match": ["fold"]}, "parent.sweep", "names this sweep (stage2)"),
    ],
)
def test_a_bad_matched_parent_is_one_line_naming_the_key_and_writes_nothing(
    tmp_path: Path, parent: dict[str, object], key: str, words: str
) -> None:
    _trained_first_level(tmp_path)
    stage2 = _level(tmp_path, "stage2", {"grid": {"fold": [1, 2], "learning_rate": [0.5]}}, parent)
    before = tree(tmp_path)
    with pytest.raises(SweepError) as caught:
        expand(parse_sweep(stage2))
    message = str(caught.value)
    assert "\n" not in message and str(stage2) in message and f": {key}: " in message and words in message, message
    assert tree(tmp_path) == before  # nothing written


def test_a_matched_parent_that_is_ambiguous_asks_for_another_key(tmp_path: Path) -> None:
    tasks = expand(parse_sweep(_level(tmp_path, "stage1", {"grid": {"fold": [1], "learning_rate": [0.1, 0.2]}}))).tasks
    for task in tasks:
        assert run_task(task.path) == 0
    stage2 = _level(tmp_path, "stage2", {"grid": {"fold": [1]}}, {"sweep": "stage1", "match": ["fold"]})
    with pytest.raises(SweepError, match=r"parent\.match: 2 tasks of sweep 'stage1' have fold=1 .*add a key to match"):
        expand(parse_sweep(stage2))
