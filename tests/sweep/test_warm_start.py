"""A task's warm start from its parent's checkpoint (``task.json``'s ``parent``, a sweep's ``parent:``).

* the copy goes through the commit protocol: killed with SIGKILL mid-copy it leaves nothing
  published (and the next attempt copies afresh); killed after its commit it leaves a whole
  verified checkpoint, and the next attempt only writes ``origin.json`` (no second copy);
* bad input (a parent that does not exist, a cycle of parents, a parent without a checkpoint)
  is one line naming the file and the key ``parent``, and writes nothing.
"""

from __future__ import annotations

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
