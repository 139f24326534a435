"""One bad task never stops a pass (issue 27, items 4, 7 and 11), with real files.

Bad tasks sort first in the run root: a task whose ``.claims`` is a plain file, one whose journal is a
directory, one whose directory is immutable (``chattr +i``: this runs as root, and a read-only mode
does not stop root; where ``chattr`` does not work the case is left out, and said so), and a
symbolic link to a task outside the run root.  Each is reported in one line, the pass goes on to
the healthy preempted tasks after them (resubmitted, completed), the exit code is 1 at the end, and
nothing is written through the link.  Garbage claim names are ignored with one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from candle_restart.coordinator import Backend, LocalBackend, resume, scan
from candle_restart.coordinator.lock import claimed_generations
from candle_restart.task import TaskDir
from tests.helpers import cli, preempted_task, report, submitted_pids, tree, wait_for_pids

BACKENDS: dict[str, Backend] = {"local": LocalBackend()}


@dataclass
class BadRoot:
    root: Path
    outside: Path
    bad: dict[str, tuple[TaskDir, str]] = field(default_factory=dict)  # case -> task, what its line says
    healthy: list[TaskDir] = field(default_factory=list)


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@pytest.fixture
def bad_root(tmp_path: Path) -> Iterator[BadRoot]:
    root, outside = tmp_path / "run", tmp_path / "elsewhere"
    made = BadRoot(root, outside)
    claims = preempted_task(root, "a-claims")
    (claims.path / ".claims").write_text("not a directory\n")
    made.bad["claims"] = (claims, ".claims: Not a directory")
    journal = preempted_task(root, "b-journal")
    journal.journal_file.mkdir()
    made.bad["journal"] = (journal, "journal.jsonl: cannot be read: Is a directory")
    immutable = preempted_task(root, "c-immutable")
    if _chattr("+i", immutable.path):
        made.bad["immutable"] = (immutable, ".lock: Operation not permitted")
    else:
        warnings.warn("chattr +i does not work here: the immutable task directory is left out", stacklevel=1)
        shutil.rmtree(immutable.path)
    away = preempted_task(outside, "d-link")
    os.symlink(away.path, root / away.task_id)
    made.bad["link"] = (TaskDir(root / away.task_id), f"a symbolic link to {away.path}, outside the run root; refused")
    inside = preempted_task(root / ".store", "e-inside")  # a link that stays inside is a task like any
    os.symlink(f".store/{inside.task_id}", root / inside.task_id)
    made.healthy = [TaskDir(root / inside.task_id), preempted_task(root, "z1"), preempted_task(root, "z2")]
    try:
        yield made
    finally:
        if "immutable" in made.bad:
            _chattr("-i", immutable.path)
        for task in made.healthy:  # runners the CLI left behind (detached children) end first
            wait_for_pids(submitted_pids(task))


def _line(text: str, task: TaskDir) -> str:
    [line] = [x for x in text.splitlines() if task.task_id in x]
    return line


def test_one_bad_task_never_stops_a_resume_pass(bad_root: BadRoot) -> None:
    outside_before = tree(bad_root.outside)
    bad_before = {case: tree(task.path) for case, (task, _) in bad_root.bad.items() if case != "link"}
    proc = cli("resume", bad_root.root)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, (proc.stdout, proc.stderr)
    for case, (task, says) in bad_root.bad.items():
        line = _line(proc.stdout, task)
        assert "-> report:" in line and says in line, (case, line)
    for task in bad_root.healthy:
        assert f"{task.task_id}: submitted generation 1" in proc.stdout, proc.stdout
        wait_for_pids(submitted_pids(task))
    states = {s.task_id: s for s in scan(bad_root.root, BACKENDS)}
    assert all(states[t.task_id].state == "completed" for t in bad_root.healthy), states
    assert tree(bad_root.outside) == outside_before  # nothing followed the link out of the run root
    for case, before in bad_before.items():
        assert tree(bad_root.bad[case][0].path) == before, case
    report("one bad task per kind", bad=len(bad_root.bad), healthy_completed=len(bad_root.healthy))


@pytest.mark.parametrize(
    "command",
    [["status"], ["status", "--json"], ["results"], ["report", "--no-plots"], ["resume", "--retry-failed", "--dry-run"]],
)
def test_one_bad_task_never_stops_a_reading_pass(bad_root: BadRoot, command: list[str], tmp_path: Path) -> None:
    before, outside_before = tree(bad_root.root), tree(bad_root.outside)
    out = ["-o", tmp_path / "report"] if command[0] == "report" else []
    proc = cli(*command, bad_root.root, *out)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, (proc.stdout, proc.stderr)
    said = proc.stdout if command[0] == "resume" else proc.stderr
    page = tmp_path / "report" / "index.html"
    shown = page.read_text() if command[0] == "report" and page.exists() else proc.stdout
    readable = [task for case, (task, _) in bad_root.bad.items() if case in ("claims", "immutable")]
    assert all(task.task_id in shown for task in [*bad_root.healthy, *readable]), shown
    for case in ("journal", "link"):  # what a reading pass cannot (or must not) read
        task, says = bad_root.bad[case]
        if command[0] == "report":
            assert task.task_id in said and says in said, (case, said)
        elif command[0] == "resume":  # two passes: the retry request's, then the resume pass's
            lines = [x for x in said.splitlines() if task.task_id in x]
            assert len(lines) == 2 and all(says in x for x in lines), (case, said)
        else:
            assert says in _line(said, task), (case, said)
    assert tree(bad_root.root) == before and tree(bad_root.outside) == outside_before


def test_garbage_claim_names_are_ignored_with_one_line(tmp_path: Path) -> None:
    """``g-`` and 120 nines made the coordinator claim generation 10**120 (and write it into a
    state.json its own reader refuses); Arabic-Indic digits counted as 33."""
    root = tmp_path / "run"
    task = preempted_task(root, "garbage")
    claims = task.path / ".claims"
    claims.mkdir()
    garbage = ["g-" + "9" * 120, "g-\u0663\u0663", "g-000002x", "g-12"]
    for name in garbage:
        (claims / name).write_text("")
    backend, lines = LocalBackend(), list[str]()
    [outcome] = resume(root, backend, log=lines.append)
    backend.wait_all()
    assert outcome.acted and (claims / "g-000001").exists(), (outcome.decision, lines)
    assert task.load_state()[1] is None  # state.json reads back
    [status] = scan(root, BACKENDS)
    assert status.state == "completed" and status.generation == 1, status
    assert sum("ignoring" in line for line in lines) == len(garbage), lines  # one line each
    lines = []
    assert claimed_generations(task, lines.append) == 1
    assert len(lines) == len(garbage) and all(".claims: ignoring" in line for line in lines), lines
