"""A run root written by an earlier version (``tests/fixtures/runroot-v1/``) still reads and resumes.

The fixture was made by ``tests/fixtures/make_runroot_v1.py`` with the code of its time: a sweep
``v1`` of three 3-epoch Keras tasks (``tests/fixtures/tiny_keras.py``) submitted once by
``candle-restart resume``: ``outcome=complete`` completed; ``outcome=preempt`` was preempted by
SIGUSR1 as epoch 2 ended (epoch 2 committed, exit 75); ``outcome=fail`` failed after committing
epoch 1, and the sweep's policy (``max_failures: 1``) gives it up.  Keep the fixture as it is:
these tests are what says a later format still understands it.  They check what a user sees
(the commands' output, the page) rather than how it is stored.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from candle_restart.task import TaskDir
from tests.helpers import cli, submitted_pids, wait_for_pids

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "runroot-v1"
PLACEHOLDER = "@DIR@"  # the generator's folder, recorded in task.json and ckpt.log
OUTCOMES = ("complete", "preempt", "fail")


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    """A copy of the fixture at ``tmp_path/run``, ``@DIR@`` replaced by ``tmp_path``."""
    root = tmp_path / "run"
    shutil.copytree(FIXTURE, root, symlinks=True)
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if PLACEHOLDER.encode() in data:
                path.write_bytes(data.replace(PLACEHOLDER.encode(), str(tmp_path).encode()))
    return root


def _json(*args: object) -> Any:
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _by_outcome(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows of ``status --json`` or ``results --format json``, by the varied parameter."""
    found = {row["params"]["outcome"]: row for row in rows}
    assert sorted(found) == sorted(OUTCOMES) and len(rows) == 3
    return found


def _task_dir(run_root: Path, outcome: str) -> Path:
    """The task directory whose varied parameter is ``outcome``."""
    (found,) = [
        p.parent
        for p in run_root.glob("*/task.json")
        if json.loads(p.read_text())["params"]["outcome"] == outcome
    ]
    return found


class _Rows(HTMLParser):
    """The text of each cell of every table row of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_status_reads_the_old_run_root(run_root: Path) -> None:
    tasks = _by_outcome(_json("status", "--json", run_root)["tasks"])
    got = {
        k: (t["state"], t["cause"], t["epoch"], t["epochs"], t["attempts"], t["last_exit"])
        for k, t in tasks.items()
    }
    assert got == {
        "complete": ("completed", None, 3, 3, 1, 0),
        "preempt": ("preempted", "preempted", 2, 3, 1, 75),
        "fail": ("failed", "error", 1, 3, 1, 1),
    }
    assert tasks["preempt"]["reason"] == "SIGUSR1 received; stopped after epoch 2"
    assert tasks["fail"]["reason"] == "RuntimeError: diverged after epoch 1"
    table = cli("status", run_root)
    assert table.returncode == 0 and "3 tasks: 1 preempted, 1 failed, 1 completed" in table.stdout


def test_results_read_the_old_run_root(run_root: Path) -> None:
    out = _json("results", "--format", "json", run_root)
    tasks = _by_outcome(out["tasks"])
    assert {k: (t["state"], t["metric"], t["best_epoch"], t["attempts"]) for k, t in tasks.items()} == {
        "complete": ("completed", "loss", 3, 1),
        "preempt": ("preempted", "loss", 2, 1),
        "fail": ("failed", "loss", 1, 1),
    }
    assert tasks["complete"]["result"] == {"loss": tasks["complete"]["final"]}
    assert out["best"] == tasks["complete"]["task_id"] and out["varied"] == ["outcome"]


def test_report_reads_the_old_run_root(run_root: Path, tmp_path: Path) -> None:
    proc = cli("report", "--no-plots", "-o", tmp_path / "page", run_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "page" / "index.html").read_text()
    parser = _Rows()
    parser.feed(page)
    status = _by_outcome(_json("status", "--json", run_root)["tasks"])
    for outcome, state in (("complete", "completed"), ("preempt", "preempted"), ("fail", "failed")):
        (row,) = [r for r in parser.rows if status[outcome]["task_id"] in r]
        assert state in row and outcome in row, row
    assert "RuntimeError: diverged after epoch 1" in page


def test_resume_brings_the_preempted_task_to_completion_from_its_checkpoint(run_root: Path) -> None:
    proc = cli("resume", run_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    preempt = _task_dir(run_root, "preempt")
    wait_for_pids(submitted_pids(TaskDir(preempt)))
    for outcome in ("complete", "fail"):  # completed, and given up by the sweep's policy: not submitted again
        assert len(submitted_pids(TaskDir(_task_dir(run_root, outcome)))) == 1

    tasks = _by_outcome(_json("status", "--json", run_root)["tasks"])
    assert {k: (t["state"], t["epoch"], t["attempts"]) for k, t in tasks.items()} == {
        "complete": ("completed", 3, 1),
        "preempt": ("completed", 3, 2),
        "fail": ("failed", 1, 1),
    }
    # The same model and data as the task never interrupted: an exact resume (weights, optimizer
    # state) ends where it did; the tolerance is for another machine's float rounding only.
    assert tasks["preempt"]["best_metric"] == pytest.approx(tasks["complete"]["best_metric"], rel=1e-5)
    exits = [(e.attempt, e.status) for e in TaskDir(preempt).events() if e.kind == "exit"]
    assert exits == [(1, "preempted"), (2, "completed")]
    assert "restarting from epoch: 2" in (preempt / "ckpts" / "ckpt.log").read_text()
    page = cli("report", "--no-plots", run_root)
    assert page.returncode == 0, page.stderr[-3000:]
    assert "Resumed: after epoch 2" in (run_root / ".report" / "index.html").read_text()
