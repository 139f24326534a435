"""The bad-host record read from real task directories, ``status --hosts`` and ``hosts --clear``.

The attempts' records are written as the runner and coordinator write them (``start`` with the
host, ``exit`` with its cause, the journal's ``runner_lost``); the hosts ``n1`` and ``n2`` are
names in those records only: one machine cannot run an attempt on another host (the Slurm test
in ``tests/slurm/test_bad_hosts.py`` takes the records of real attempts through real Slurm).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from candle_restart.cli import main
from candle_restart.coordinator.hostfacts import attempt_ends, host_table, sweep_of
from candle_restart.records.hostlog import HOSTS_FILE, read_clears
from candle_restart.records.journal import EXIT, RUNNER_LOST, START, JournalEvent
from candle_restart.records.jsontypes import JsonObject, JsonValue
from candle_restart.task import TaskDir, create_task

TOY = "tests.coordinator.toy:run"


def _attempt(
    task: TaskDir, n: int, host: str, cause: str | None, *, lost: bool = False, **extras: JsonValue
) -> None:
    ident: JsonObject = {"host": host, "pid": 1000 + n, **extras}
    task.append_run_event(JournalEvent(START, attempt=n, generation=n, extras=ident))
    if lost:  # the coordinator records the runner it found dead
        task.append_journal(JournalEvent(RUNNER_LOST, reason="runner gone", cause=cause))
        return
    status = "completed" if cause is None else "failed" if cause == "error" else "preempted"
    reason = "RuntimeError: boom" if cause == "error" else status
    task.append_run_event(
        JournalEvent(
            EXIT,
            attempt=n,
            exit_code=0,
            status=status,
            reason=reason,
            cause=cause,
            generation=n,
            extras=ident,
        )
    )


def _tasks(root: Path) -> tuple[TaskDir, TaskDir]:
    """The tasks of the fixture, by their parameter ``i``."""
    by_i = {TaskDir(p).load_spec().params["i"]: TaskDir(p) for p in root.glob("s-*")}
    return by_i[1], by_i[2]


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    """Task ``s-...`` with i=1: a hang and a lost node on n1, then completed on n2; i=2: an error on
    n1 that did not repeat on n2."""
    root = tmp_path / "runs"
    a = create_task(root, {"epochs": 3, "i": 1}, entry=TOY, sweep="s")
    b = create_task(root, {"epochs": 3, "i": 2}, entry=TOY, sweep="s")
    _attempt(a, 1, "n1", "hang")
    _attempt(a, 2, "n1", "node_fail", lost=True)
    _attempt(a, 3, "n2", None)
    _attempt(b, 1, "n1.example.org", "error", node="n1")  # Slurm's node name wins over the host name
    _attempt(b, 2, "n2", None)
    return root


def test_attempt_ends_are_read_from_both_journals(run_root: Path) -> None:
    a, b = _tasks(run_root)
    ends = attempt_ends(a)
    assert [(e.host, e.cause) for e in ends] == [("n1", "hang"), ("n1", "node_fail"), ("n2", None)]
    assert all(e.sweep == "s" and e.time is not None for e in ends)
    assert [(e.host, e.cause, e.reason) for e in attempt_ends(b)] == [
        ("n1", "error", "RuntimeError: boom"),
        ("n2", None, "completed"),
    ]
    assert sweep_of("my-sweep-0123456789ab") == "my-sweep" and sweep_of("odd") == "odd"


def test_the_table_excludes_the_host_whose_attempts_keep_failing(run_root: Path) -> None:
    tasks = list(_tasks(run_root))
    rows = host_table(run_root, tasks, bad_ends=2, share=0.5, nodes=["n1", "n2"])
    assert [(r.host, r.attempts, dict(r.bad), r.excluded) for r in rows] == [
        ("n1", 3, {"hang": 1, "node_fail": 1, "error": 1}, True),
        ("n2", 2, {}, False),
    ]


def test_status_hosts_shows_the_table_and_a_clear_is_durable_and_recorded(
    run_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--hosts", str(run_root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["host", "attempts", "hang", "node_fail", "error", "slow", "excluded", "why"]
    assert out[1].split()[:7] == ["n1", "3", "1", "1", "1", "0", "no"]  # a local run root: nothing to exclude
    assert (
        "3 bad ends (hang 1, node_fail 1, error 1), at least 2; not excluded: this executor cannot" in out[1]
    )
    assert "only Slurm submissions take --exclude" in out[-1]

    assert main(["hosts", str(run_root), "--clear", "n1", "--json"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("cleared n1 at ")
    doc = json.loads(printed[printed.index("{") :])
    assert [h["host"] for h in doc["hosts"]] == ["n2"]  # n1's ends before the clear no longer count
    [record] = read_clears(run_root)  # durable: read back from the file by a new reader
    assert record.hosts == ("n1",) and record.by["pid"] and record.by["user"]
    line = json.loads((run_root / HOSTS_FILE).read_text())
    assert line["event"] == "hosts_cleared" and line["hosts"] == ["n1"]

    _, b = _tasks(run_root)
    _attempt(b, 3, "n1", "hang")  # after the clear: counts again
    assert main(["status", "--hosts", str(run_root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    n1 = next(h for h in doc["hosts"] if h["host"] == "n1")
    assert n1["attempts"] == 1 and n1["bad"]["hang"] == 1 and "counted since a clear" in n1["why"]


def test_status_hosts_with_a_torn_sweep_manifest_still_shows_the_table_and_says_why(
    run_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = run_root / ".sweep-torn.json"
    manifest.write_text('{"name": "torn", "slurm": {')  # cut mid-write
    assert main(["status", "--hosts", str(run_root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["n1", "3"]
    assert "the sweep's Slurm options cannot be read" in out[-1] and str(manifest) in out[-1]


def test_a_torn_clear_line_is_skipped_and_a_bad_share_is_one_line(
    run_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_root / HOSTS_FILE).write_text(
        '{"event": "hosts_cleared", "time": "2026-01-01T00:00:00+00:00", "hosts": null}\n{"event": "hosts_cl'
    )
    assert len(read_clears(run_root)) == 1
    with pytest.raises(SystemExit) as exc:
        main(["resume", str(run_root), "--max-excluded-share", "1.5"])
    assert exc.value.code == 2
    assert "must be a share from 0 to 1, got '1.5'" in capsys.readouterr().err


def test_slow_epochs_are_read_from_the_exit_and_compared_with_the_sweeps_other_hosts(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for i, (host, pace) in enumerate([("n1", 5.0), ("n2", 1.0), ("n3", 1.2)]):
        _attempt(create_task(root, {"i": i}, entry=TOY, sweep="s"), 1, host, None, epoch_seconds=pace)
    tasks = [TaskDir(p) for p in root.glob("s-*")]
    assert sorted(e.epoch_seconds or 0 for t in tasks for e in attempt_ends(t)) == [1.0, 1.2, 5.0]
    rows = {r.host: r for r in host_table(root, tasks, bad_ends=1, share=0.34, nodes=["n1", "n2", "n3"])}
    assert dict(rows["n1"].bad) == {"slow": 1} and rows["n1"].excluded
    assert not rows["n2"].bad and not rows["n3"].bad
