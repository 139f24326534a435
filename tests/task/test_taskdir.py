"""Task directories and the runner's bad-input and command paths (no TensorFlow)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from candle_restart.task import TaskDir, TaskError, create_task, make_task_id, run_task
from tests.helpers import journal, start_runner, state


def test_task_ids_are_stable_and_safe() -> None:
    a = make_task_id("sweep one/../x", {"lr": 0.1, "epochs": 3})
    assert a == make_task_id("sweep one/../x", {"epochs": 3, "lr": 0.1})
    assert "/" not in a and not a.startswith(".") and ".." not in a
    assert a != make_task_id("sweep one/../x", {"epochs": 3, "lr": 0.2})


def test_create_task_is_idempotent_and_refuses_edits(tmp_path: Path) -> None:
    t1 = create_task(tmp_path, {"epochs": 2}, entry="m:f", sweep="s")
    assert create_task(tmp_path, {"epochs": 2}, entry="m:f", sweep="s").path == t1.path
    before = t1.task_file.read_bytes()
    with pytest.raises(TaskError, match="already exists with different content"):
        create_task(tmp_path, {"epochs": 3}, entry="m:f", sweep="s", task_id=t1.task_id)
    assert t1.task_file.read_bytes() == before


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{oops", "task.json: is not valid JSON"),
        ('{"task_id": "t", "params": {}}', "task.json: entry: exactly one of"),
        ('{"task_id": "t", "params": {}, "entry": "os.path join"}', "entry: must look like"),
        ('{"task_id": "t", "params": [], "entry": "m:f"}', "params: must be an object"),
        ('{"task_id": "other", "params": {}, "entry": "m:f"}', "task_id: is 'other' but the directory"),
        ('{"task_id": "t", "params": {}, "command": "python x.py"}', "command: must be a non-empty list"),
    ],
)
def test_bad_task_json_exits_2_with_one_line_and_records_it(
    tmp_path: Path, content: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task = tmp_path / "t"
    task.mkdir()
    (task / "task.json").write_text(content)  # without a task.json it is no task: see tests/task/test_result.py
    assert run_task(task) == 2
    assert fragment in capsys.readouterr().err
    assert state(task)["status"] == "bad_input" and fragment in state(task)["reason"]
    assert not (task / "ckpts").exists()


def test_bad_gparameters_exit_2_before_anything_in_ckpts(tmp_path: Path) -> None:
    task = create_task(
        tmp_path, {"epochs": 2, "ckpt_keep_limit": 0}, entry="candle_restart.examples.regression:run"
    )
    assert run_task(task.path) == 2
    assert "params: ckpt_keep_limit: must be an integer >= 1" in state(task.path)["reason"]
    assert not task.ckpts.exists()


def test_entry_that_does_not_import_is_bad_input(tmp_path: Path) -> None:
    task = create_task(tmp_path, {"epochs": 1}, entry="no_such_module_xyz:run")
    assert run_task(task.path) == 2
    assert "entry: cannot import 'no_such_module_xyz:run': ModuleNotFoundError" in state(task.path)["reason"]


def test_missing_command_is_bad_input(tmp_path: Path) -> None:
    task = create_task(tmp_path, {"epochs": 1}, command=["/no/such/benchmark.sh"])
    assert run_task(task.path) == 2
    assert "command: cannot run '/no/such/benchmark.sh'" in state(task.path)["reason"]


SCRIPT = """
import argparse, json, sys
p = argparse.ArgumentParser()
p.add_argument("--epochs"); p.add_argument("--name"); p.add_argument("--flag"); p.add_argument("--grid")
p.add_argument("--ckpt_directory"); p.add_argument("--output_dir"); p.add_argument("--code", type=int)
p.add_argument("--lr", type=float)
a = p.parse_args()
print(json.dumps(vars(a)))
print("something went wrong", file=sys.stderr)
sys.exit(a.code)
"""


@pytest.mark.parametrize("code, status", [(0, "completed"), (1, "failed"), (75, "preempted"), (3, "failed")])
def test_command_form_passes_values_literally_and_maps_exit_codes(
    tmp_path: Path, code: int, status: str
) -> None:
    script = tmp_path / "bench.py"
    script.write_text(SCRIPT)
    hostile = '"; touch /tmp/pwned-candle-restart #'
    task = create_task(
        tmp_path / "run",
        {"epochs": 2, "name": hostile, "flag": True, "grid": [1, 2], "code": code, "lr": -1e-05},
        command=[sys.executable, str(script)],
    )
    assert run_task(task.path) == (code if code in (0, 1, 75) else 1)
    out = (task.path / "logs" / "attempt-001.out").read_text()
    args = json.loads(out)
    assert args["name"] == hostile and args["flag"] == "True" and args["grid"] == "[1, 2]"
    assert args["lr"] == -1e-05  # a value starting with "-" stays a value
    assert args["ckpt_directory"] == str(task.ckpts)
    assert not Path("/tmp/pwned-candle-restart").exists()
    st = state(task.path)
    assert st["status"] == status and st["exit_code"] == (code if code in (0, 1, 75) else 1)
    if status == "failed":
        assert st["error_tail"] == ["something went wrong"]
    events = journal(task.path)
    assert [e.kind for e in events] == ["start", "exit"] and events[0].pid == events[1].pid is not None


def test_attempts_count_up_and_slurm_ids_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "ok.py"
    script.write_text("import sys; sys.exit(0)\n")
    task = create_task(tmp_path, {"epochs": 1}, command=[sys.executable, str(script)])
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")
    run_task(task.path)
    run_task(task.path)
    starts = [e for e in journal(task.path) if e.kind == "start"]
    assert [e.attempt for e in starts] == [1, 2]
    assert starts[1].job_id == "4242" and starts[1].extras.get("restart_count") == "3"
    assert (task.path / "logs" / "attempt-002.out").exists()


def test_torn_journal_line_is_skipped(tmp_path: Path) -> None:
    task = TaskDir(tmp_path / "t")
    task.path.mkdir()
    task.append_journal({"event": "start", "attempt": 1})
    with open(task.journal_file, "a") as f:
        f.write('{"event": "exit", "att')
    assert [e.kind for e in task.events()] == ["start"]
    assert task.attempts() == 1


FORWARD_SCRIPT = """
import argparse, os, signal, sys
p = argparse.ArgumentParser(); p.add_argument("--fifo"); p.add_argument("--epochs")
p.add_argument("--ckpt_directory"); p.add_argument("--output_dir")
a = p.parse_args()
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
with open(a.fifo, "w") as f:
    f.write("ready\\n")
while not got:
    signal.pause()
print("child got", signal.Signals(got[0]).name)
sys.exit(75)
"""


def test_command_form_forwards_signals_to_the_child(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(FORWARD_SCRIPT)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    task = create_task(
        tmp_path / "run", {"epochs": 1, "fifo": str(fifo)}, command=[sys.executable, str(script)]
    )
    proc = start_runner(task.path)
    with open(fifo) as f:
        assert f.readline() == "ready\n"
    proc.send_signal(signal.SIGUSR1)
    _out, err = proc.communicate()
    assert proc.returncode == 75, err
    assert "child got SIGUSR1" in (task.path / "logs" / "attempt-001.out").read_text()
    assert state(task.path)["status"] == "preempted"


def test_sys_exit_without_a_code_in_an_entry_is_completion(tmp_path: Path) -> None:
    task = create_task(tmp_path, {"epochs": 1}, entry="tests.coordinator.toy:exit_quietly")
    assert run_task(task.path) == 0 and state(task.path)["status"] == "completed"
