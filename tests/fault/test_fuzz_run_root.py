"""A fuzz of every file a run root holds (task.json, state.json, the journal, ckpt-info.json, the
sweep manifest) under ``status``, ``resume --dry-run``, ``report``, ``ckpt`` and ``run``, through
the real command line: one line or a correct result, never a traceback or a hang, and nothing on
disk changed by the commands that only read.  Each example is one run root whose every task has
one file made hostile; ``make torture`` runs more examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from candle_restart.task import TaskDir, run_task
from tests.helpers import cli, report, toy_task, tree, trials

HOSTILE = [
    "[" * 3000 + "]" * 3000,
    "9" * 5000,
    "9" * 120,
    "Infinity",
    "-Infinity",
    "NaN",
    "1e400",
    "-1",
    "0",
    "true",
    "null",
    "[1]",
    "{}",
    '"\\udcff\\ud800"',
    '"' + "x" * 5000 + '"',
    '"2024-01-01"',
    '"epochs/../../x"',
    '{"epoch": 1, "batch": "x"}',
]
FILES = ["task.json", "state.json", "journal.jsonl", "runs.jsonl", "ckpt-info.json", "manifest"]


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, Any]:
    """How to spoil a file: set a key to a hostile JSON text, cut it short, or write bytes."""
    kind = draw(st.sampled_from(["value", "value", "truncate", "bytes"]))
    if kind == "value":
        return kind, (draw(st.integers(0, 30)), draw(st.sampled_from(HOSTILE)))
    if kind == "truncate":
        return kind, draw(st.floats(0.0, 1.0))
    return kind, draw(st.binary(max_size=40))


def spoil(path: Path, how: tuple[str, Any]) -> None:
    kind, arg = how
    data = path.read_bytes()
    if kind == "truncate":
        path.write_bytes(data[: int(len(data) * arg)])
    elif kind == "bytes":
        path.write_bytes(arg)
    else:
        pick, text = arg
        lines = data.decode().splitlines()
        line = pick % len(lines) if path.suffix == ".jsonl" else None
        record = json.loads(lines[line] if line is not None else data)
        keys = sorted(record) or ["x"]
        record[keys[pick % len(keys)]] = "@HOSTILE@"
        spoiled = json.dumps(record).replace('"@HOSTILE@"', text)
        if line is not None:
            lines[line] = spoiled
            spoiled = "\n".join(lines) + "\n"
        path.write_text(spoiled)


def build(root: Path, hows: list[tuple[str, Any]]) -> list[TaskDir]:
    tasks = []
    for i, (name, how) in enumerate(zip(FILES, hows, strict=True)):
        task = toy_task(root, f"t{i}", epochs=2)
        task.append_journal({"event": "submit_intent", "generation": 1, "backend": "local", "reason": "new"})
        task.append_journal({"event": "submitted", "generation": 1, "submission": None})
        assert run_task(task.path) == 0
        target = {
            "task.json": task.task_file,
            "state.json": task.state_file,
            "journal.jsonl": task.journal_file,
            "runs.jsonl": task.runs_file,
            "ckpt-info.json": task.ckpts / "last" / "ckpt-info.json",
            "manifest": root / ".sweep-t.json",
        }[name]
        if name == "manifest":
            target.write_text(
                json.dumps({"name": "t", "entry": "x:y", "params": {}, "varied": [], "slurm": {}})
            )
        spoil(target, how)
        tasks.append(task)
    return tasks


def clean(proc: Any, codes: tuple[int, ...] = (0,)) -> None:
    assert proc.returncode in codes and "Traceback" not in proc.stderr, (proc.args, proc.stderr[-3000:])


@settings(
    max_examples=trials(2),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(mutation(), min_size=len(FILES), max_size=len(FILES)))
def test_every_file_of_a_run_root_spoiled(tmp_path_factory: Any, hows: list[tuple[str, Any]]) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    tasks = build(root, hows)
    before = tree(root)
    status = cli("status", root)
    clean(status)
    assert all(t.task_id in status.stdout for t in tasks)
    clean(cli("status", "--json", root))
    dry = cli("resume", "--dry-run", root)
    clean(dry)
    assert all(t.task_id in dry.stdout for t in tasks)
    clean(cli("report", root, "--no-plots"))
    for task in tasks:
        clean(cli("ckpt", task.ckpts), (0, 2))
    assert tree(root) == before, "a reading command changed the run root"
    for task in tasks:
        run = cli("run", task.path)
        clean(run, (0, 1, 2, 75))
        state, _ = task.load_state()
        assert state is not None and state.status != "running", (task.task_id, state)
    report("fuzzed run root", files=len(FILES), tracebacks=0, hangs=0)
