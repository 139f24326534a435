"""Bad input that used to break something (issue 13, item 7), each through the real command line:
one clear line or a correct result, no traceback, nothing changed on disk, and one malformed
file makes one task unreadable, never the whole run root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from candle_restart.task import TaskDir, create_task, run_task
from tests.helpers import cli, report, toy_task, tree

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5000


def candle_checkpoint(task: TaskDir, epoch: int, info_text: str) -> None:
    """A checkpoint as CANDLE writes it (``Infinity`` allowed), with ``last`` pointing at it."""
    directory = task.ckpts / "epochs" / f"{epoch:03d}"
    directory.mkdir(parents=True)
    (directory / "model.h5").write_bytes(b"weights")
    (directory / "ckpt-info.json").write_text(info_text)
    if os.path.lexists(task.ckpts / "last"):
        os.unlink(task.ckpts / "last")
    os.symlink(f"epochs/{epoch:03d}", task.ckpts / "last")


def candle_info(epoch: int, best: str = "0.5") -> str:
    return (
        f'{{"epoch": {epoch}, "save_best_metric": "val_loss", "best_metric_last": {best}, '
        '"model_file": "model.h5", "checksum": "__DISABLED__", "timestamp": "2024-01-01 00:00:00", '
        '"time_elapsed": "__FIRST__", "metadata": ""}'
    )


def test_candle_infinity_best_metric_and_a_training_error_is_a_failure(tmp_path: Path) -> None:
    task = create_task(tmp_path, {"epochs": 3}, command=["false"], sweep="inf")
    candle_checkpoint(task, 1, candle_info(1, best="Infinity"))
    run = cli("run", task.path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    state = json.loads(task.state_file.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert state["status"] == "failed" and state["checkpoint"]["best_metric_last"] is None
    status = cli("status", "--json", tmp_path)
    assert status.returncode == 0
    data = json.loads(status.stdout, parse_constant=lambda c: pytest.fail(f"status --json printed {c}"))
    assert data["tasks"][0]["state"] == "failed" and data["tasks"][0]["best_metric"] is None
    dry = cli("resume", "--dry-run", tmp_path)
    assert f"{task.task_id}: failed -> wait" in dry.stdout
    report("candle Infinity then training error", state=state["status"], tracebacks=0)


MALFORMED: dict[str, tuple[str, str | bytes, str | None]] = {
    "journal nested 100,000 deep": ("journal.jsonl", DEEP + "\n", None),
    "journal 5,000-digit integer": ("journal.jsonl", f'{{"event":"start","attempt":{HUGE}}}\n', None),
    "journal generation [1]": ("journal.jsonl", '{"event":"submit_intent","generation":[1]}\n', None),
    "journal submission pid a list": (
        "journal.jsonl",
        '{"event":"submitted","generation":1,"submission":{"backend":"local","pid":[1]}}\n',
        None,
    ),
    "state.json nested deep": ("state.json", DEEP, "state.json: unreadable: nests arrays"),
    "state.json 5,000-digit pid": (
        "state.json",
        f'{{"status":"running","pid":{HUGE},"host":"h"}}',
        "state.json: unreadable: has an integer of 5000 digits",
    ),
    "state.json not UTF-8": ("state.json", b'{"status":"\xff"}', "state.json: unreadable: is not UTF-8"),
    "task.json nested deep": ("task.json", DEEP, "bad input: "),
}


def _malformed_root(root: Path) -> dict[str, TaskDir]:
    tasks = {}
    for i, (case, (name, content, _)) in enumerate(MALFORMED.items()):
        task = toy_task(root, f"bad{i}", epochs=2)
        assert run_task(task.path) == 0
        path = task.path / name
        if name == "journal.jsonl":
            with open(path, "ab") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        tasks[case] = task
    good = toy_task(root, "good", epochs=2)
    assert run_task(good.path) == 0
    tasks["good"] = good
    return tasks


def test_one_malformed_file_makes_one_task_unreadable_never_the_run_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    tasks = _malformed_root(root)
    before = tree(root)
    for command in (["status"], ["status", "--json"], ["resume", "--dry-run"]):
        proc = cli(*command, root)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (command, proc.stderr[-2000:])
        assert tree(root) == before, f"{command} changed the run root"
        for case, task in tasks.items():
            if "--json" in command:
                continue
            line = next(x for x in proc.stdout.splitlines() if task.task_id in x)
            if MALFORMED.get(case, (None, None, None))[2] is None:
                assert "completed" in line, (case, line)
            else:
                assert "failed" in line, (case, line)
    statuses = {t["task_id"]: t for t in json.loads(cli("status", "--json", root).stdout)["tasks"]}
    for case, task in tasks.items():
        expected = MALFORMED.get(case, (None, None, None))[2]
        status = statuses[task.task_id]
        if expected is None:
            assert status["state"] == "completed", (case, status)
        else:
            assert status["state"] == "failed" and not status["retryable"], (case, status)
            assert expected in status["reason"] and "\n" not in status["reason"], (case, status)
    out = tmp_path / "report"
    proc = cli("report", root, "-o", out, "--no-plots")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert tree(root) == before
    page = (out / "index.html").read_text()
    assert all(task.task_id in page for task in tasks.values())
    report("one malformed file per task", tasks=len(tasks), unreadable_run_roots=0, tracebacks=0)


def test_run_on_a_deeply_nested_task_json_is_bad_input(tmp_path: Path) -> None:
    task = toy_task(tmp_path, "deep")
    task.task_file.write_text(DEEP)
    proc = cli("run", task.path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{task.task_file}: nests arrays or objects more than 64 deep" in lines[0]
    assert json.loads(task.state_file.read_text())["status"] == "bad_input"


def test_a_deeply_nested_ckpt_info_falls_back_in_ckpt_and_at_restart(tmp_path: Path) -> None:
    task = toy_task(tmp_path, "fallback", epochs=4)
    candle_checkpoint(task, 1, candle_info(1))
    candle_checkpoint(task, 2, DEEP)
    proc = cli("ckpt", task.ckpts)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "BAD" in proc.stdout and "nests arrays or objects more than 64 deep" in proc.stdout
    assert f"restart would load: {task.ckpts / 'epochs' / '001'}" in proc.stdout
    run = cli("run", task.path)  # the toy restarts through find_restart: from epoch 1, then to the end
    assert run.returncode == 0, run.stderr
    assert json.loads(task.state_file.read_text())["checkpoint"]["epoch"] == 4
    aside = [p for p in (task.ckpts / "epochs").iterdir() if p.name.startswith("002.corrupt-")]
    assert len(aside) == 1 and (aside[0] / "ckpt-info.json").read_text() == DEEP  # kept, not loaded


def test_report_draws_odd_metric_names_literally(tmp_path: Path) -> None:
    """``save_best_metric: 5`` and names that matplotlib's mathtext cannot parse."""
    names = {"five": 5, "frac": "$\\frac{$", "power": "$x^$"}
    for sweep, name in names.items():
        task = toy_task(tmp_path, sweep, epochs=2)
        assert run_task(task.path) == 0
        for info in (task.ckpts / "epochs").glob("*/ckpt-info.json"):
            info.write_text(json.dumps({**json.loads(info.read_text()), "save_best_metric": name}))
    before = tree(tmp_path)
    out = tmp_path / ".report"
    proc = cli("report", tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "(3 tasks, 3 plots" in proc.stdout and tree(tmp_path) == before
    page = (out / "index.html").read_text()
    assert "$x^$" in page and "$\\frac{$" in page
    assert sorted(p.name for p in (out / "plots").glob("overview-*.png")) == [
        "overview-1.png",
        "overview-2.png",
        "overview-3.png",
    ]


def _alias_bomb() -> str:
    """456 bytes of YAML that expand to 9**9 strings."""
    lines = ["name: bomb", "entry: tests.coordinator.toy:run", "params:", "  l0: &l0 [a,a,a,a,a,a,a,a,a]"]
    lines += [f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "content, problem",
    [
        (_alias_bomb().encode(), "expands to more than 100000 values (through YAML aliases)"),
        (
            b"name: d\nparams: {a: " + b"[" * 5000 + b"]" * 5000 + b"}\n",
            "nests mappings or lists more than 64 deep",
        ),
        (b"name: caf\xe9\nentry: tests.coordinator.toy:run\n", "is not UTF-8 (byte 0xe9 at offset 9)"),
    ],
    ids=["alias bomb", "deep", "latin-1"],
)
def test_hostile_sweep_yaml_is_one_line_and_creates_nothing(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_bytes(content)
    before = tree(tmp_path)
    for command in (["sweep", "status"], ["sweep", "run"]):
        proc = cli(*command, config)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr[-2000:]
        assert proc.stderr.splitlines() == [f"candle-restart: {config}: {problem}"]
        assert tree(tmp_path) == before


def test_an_sbatch_extra_option_never_becomes_a_shell_line(tmp_path: Path) -> None:
    """In the sweep YAML, in the manifest read back by ``resume --backend slurm``, and in the script."""
    from candle_restart.slurm.script import render

    hostile = "--hold\ntouch pwned"
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "name: s\nentry: tests.coordinator.toy:run\nrun_root: root\n"
        f"executor: {{kind: slurm, slurm: {{extra: [{json.dumps(hostile)}]}}}}\n"
    )
    proc = cli("sweep", "status", config)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert f"{config}:4: executor.slurm.extra: " in proc.stderr and "is not one sbatch option" in proc.stderr
    root = tmp_path / "root"
    root.mkdir()
    manifest = root / ".sweep-s.json"
    for slurm, problem in (
        ({"extra": [hostile]}, "slurm.extra: '--hold\\ntouch pwned' is not one sbatch option"),
        ({"partition": "debug\nrm"}, "slurm.partition: must be one word"),
        ({"nodes": "2"}, "slurm.nodes: must be an integer >= 1"),
        ([1], "slurm: must be a JSON object, got list"),
    ):
        manifest.write_text(json.dumps({"name": "s", "slurm": slurm}))
        before = tree(tmp_path)
        proc = cli("resume", "--backend", "slurm", root)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert len(proc.stderr.splitlines()) == 1
        assert proc.stderr.startswith(f"candle-restart: {manifest}: {problem}")
        assert tree(tmp_path) == before and not (tmp_path / "pwned").exists()
    with pytest.raises(ValueError, match="unsafe sbatch option"):
        render("job", tmp_path / "list", 1, {"extra": [hostile]})
