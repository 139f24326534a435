"""What a user reads: parameters and results in status, results and the report (with a task running),
folders that are not run roots, help, and a closed pipe."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from candle_restart.cli import main
from candle_restart.coordinator.states import TaskStatus
from candle_restart.report.collect import TaskReport
from candle_restart.task import create_task, run_task
from tests.helpers import ROOT, TOY, runner_env, start_runner, toy_task

RETURNING = "tests.coordinator.toy:returning"


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_status_results_and_report_show_parameters_and_results_while_a_task_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, gate_path = tmp_path / "run", tmp_path / "gate"
    short = create_task(root, {"epochs": 2, "lr": 0.1}, entry=RETURNING, sweep="grid")
    long = create_task(root, {"epochs": 4, "lr": 0.01}, entry=RETURNING, sweep="grid")
    assert run_task(short.path) == 0 and run_task(long.path) == 0
    missing = tmp_path / "no-such-input" / ("x" * 60)
    bad = create_task(root, {"epochs": 3, "lr": 1.0, "requires": str(missing)}, entry=TOY, sweep="grid")
    assert run_task(bad.path) == 2
    os.mkfifo(gate_path)
    running = create_task(root, {"epochs": 3, "lr": 0.5, "hold_fifo": str(gate_path)}, entry=TOY, sweep="grid")
    runner = start_runner(running.path)
    gate = open(gate_path, "w")  # noqa: SIM115 - returns once the runner holds inside its first epoch
    try:
        monkeypatch.setenv("COLUMNS", "160")
        assert main(["status", str(root)]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert re.match(r"task +epochs +hold_fifo +lr +requires +state ", lines[0]), out
        assert all(len(line) <= 160 for line in lines), out
        assert re.search(rf"{long.task_id} +4 +- +0\.01 .*completed", out)
        assert re.search(rf"{running.task_id} +3 +…\S+/gate +0\.5 .*running", out)
        assert str(missing) in "".join(line.strip() for line in lines)  # the whole reason, wrapped
        assert lines[-1] == "4 tasks: 1 running, 1 failed, 2 completed"
        monkeypatch.setenv("COLUMNS", "80")  # narrower: the least useful columns are left out, and said so
        assert main(["status", str(root)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert all(len(line) <= 80 for line in lines) and re.match(r"task +epochs +lr +state ", lines[0]), lines
        assert " ".join(lines).count("(left out for the width: job, ckpt age, exit, attempts, cause, hold_fifo, requires;")
        assert str(missing) in "".join(line.strip() for line in lines)

        assert main(["status", str(root), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["varied"] == ["epochs", "hold_fifo", "lr", "requires"]
        tasks = {t["task_id"]: t for t in data["tasks"]}
        assert tasks[long.task_id]["params"] == {"epochs": 4, "lr": 0.01}
        assert tasks[long.task_id]["result"]["val_loss"] == 0.25
        assert tasks[running.task_id]["state"] == "running"

        assert main(["results", str(root), "--format", "csv"]) == 0
        captured = capsys.readouterr()
        rows = {r["task_id"]: r for r in csv.DictReader(io.StringIO(captured.out))}
        assert list(rows) == [long.task_id, short.task_id, running.task_id, bad.task_id]  # by val_loss
        assert rows[long.task_id]["params.lr"] == "0.01" and rows[long.task_id]["best_epoch"] == "4"
        assert rows[long.task_id]["final"] == "0.25" and rows[long.task_id]["result.n"] == "4"
        assert json.loads(rows[short.task_id]["result"])["curve"] == [1.0, 0.5]
        assert rows[bad.task_id]["best"] == "" and rows[bad.task_id]["state"] == "failed"
        assert _one_line(captured.err).startswith(f"best: {long.task_id} (val_loss=0.25 at epoch 4, min;")
        try:
            import pandas  # optional: the CSV must load as a data frame
        except ImportError:
            pass
        else:
            frame = pandas.read_csv(io.StringIO(captured.out))
            assert list(frame["task_id"]) == list(rows) and frame["params.lr"][0] == 0.01

        assert main(["results", str(root), "--format", "json", "--sort", "val_loss:max"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["best"] == running.task_id and doc["mode"] == "max"  # epoch 1 of the toy: 1.0
        assert main(["results", str(root), "--sort", "n"]) == 0  # a key of the results; a count: min
        out = capsys.readouterr().out
        assert f"best: {short.task_id} (n=2, min; completed; epochs=2; lr=0.1" in out

        assert main(["report", str(root), "--no-plots"]) == 0  # crashed on a running task before
        page = (root / ".report" / "index.html").read_text()
        assert '<th data-key="param_lr" class="param">lr</th>' in page
        assert re.search(rf'<a href="#task-\d+">{running.task_id}</a></td><td class="param">3</td>', page)
        counts = dict(re.findall(r'data-count="(\w+)"><b>(\d+)</b>', page))
        assert (counts["failed"], counts["failures"], counts["running"]) == ("1", "1", "1")
        assert "failed attempts" in page and "&quot;val_loss&quot;: 0.25" in page
    finally:
        gate.write("go\n")
        gate.close()
        runner.communicate()
    assert runner.returncode == 0


def test_folders_that_are_not_run_roots_are_refused_with_a_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project" / "runs" / "demo"
    task = toy_task(root, "t", epochs=1)
    toy_task(root, "u", epochs=2)
    assert run_task(task.path) == 0
    other = toy_task(tmp_path / "project" / "runs" / "old", "v", epochs=1)
    capsys.readouterr()
    project = tmp_path / "project"
    (project / "sweep.yaml").write_text("name: demo\nentry: tests.coordinator.toy:run\nparams: {epochs: 1}\n")
    before = sorted(p.name for p in project.rglob("*"))
    for command in ("status", "resume", "report", "results"):
        assert main([command, str(project)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert line.startswith(f"candle-restart: {project}: is not a run root (no task directories in it); ")
        assert f"the sweep YAML {project / 'sweep.yaml'} has run_root {root} (2 tasks)" in line
        assert line.endswith(f"; run roots below it: {other.path.parent} (1 tasks)")  # the YAML's not twice
    assert main(["status", str(task.path)]) == 2
    assert f"it is a task directory; its run root is {root}" in _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in project.rglob("*")) == before, "a refused command wrote something"

    assert main(["ckpt", str(task.path)]) == 0  # a task directory: its ckpts/
    out = capsys.readouterr().out
    assert out.startswith(f"checkpoints of {task.ckpts}\n") and "restart would load: " + str(task.ckpts) in out


def test_help_lists_every_command_with_defaults_and_a_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for command in ("status", "results", "resume", "report", "run", "sweep", "slurm", "ckpt", "demo"):
        assert re.search(rf"^    {command} +\w", text, re.MULTILINE), command
    assert "`" not in text
    with pytest.raises(SystemExit):
        main(["resume", "--help"])
    text = capsys.readouterr().out
    assert "(default: 2)" in text and "(default: 50)" in text and "--retry-failed [TASK ...]" in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert re.fullmatch(r"candle-restart \d+\.\d+\S*\n", capsys.readouterr().out)


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    toy_task(tmp_path / "run", "t")
    read, write = os.pipe()
    os.close(read)  # as `| head -1` once it has its line: every write now fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "candle_restart.cli", "status", "--json", str(tmp_path / "run")],
            cwd=ROOT,
            env=runner_env(),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_the_overview_has_whole_epochs_on_its_axis() -> None:
    pytest.importorskip("matplotlib")
    from candle_restart.report.plots import overview_figure

    task = TaskReport(1, TaskStatus("t", "completed", ""), values={1: 0.5, 2: 0.4, 3: 0.3})
    ticks = overview_figure("val_loss", [task]).axes[0].get_xticks()
    assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks), ticks
