"""Classification of tasks in every state (real runs of a toy task), and the policy table."""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from candle_restart.coordinator import LocalBackend, Policy, TaskStatus, decide, scan
from candle_restart.coordinator.backend import Backend
from candle_restart.coordinator.report import summary, table
from candle_restart.task import create_task, run_task
from tests.helpers import obj, preempted_task, start_runner, text, toy_task

BACKENDS: dict[str, Backend] = {"local": LocalBackend()}


def _by_id(root: Path) -> dict[str, TaskStatus]:
    return {s.task_id.split("-")[0]: s for s in scan(root, BACKENDS)}


def test_every_state_is_classified_with_its_reason(tmp_path: Path) -> None:
    root = tmp_path / "run"
    toy_task(root, "new")
    assert run_task(toy_task(root, "completed").path) == 0
    preempted_task(root, "preempted")
    assert run_task(toy_task(root, "failed", fail_at=2).path) == 1
    assert (
        run_task(create_task(root, {"epochs": 1, "ckpt_keep_limit": 0}, entry="x:y", sweep="badinput").path)
        == 2
    )
    corrupt = preempted_task(root, "corrupt")
    for info in (corrupt.ckpts / "epochs").glob("*/ckpt-info.json"):
        info.write_text("{torn")
    queued = toy_task(root, "queued")
    queued.append_journal({"event": "submit_intent", "generation": 1, "backend": "local"})

    fifos = tmp_path / "gate1", tmp_path / "gate2"
    for fifo in fifos:
        os.mkfifo(fifo)
    running = toy_task(root, "running", hold_fifo=str(fifos[0]))
    lost = toy_task(root, "lost", hold_fifo=str(fifos[1]))
    runner, victim = start_runner(running.path), start_runner(lost.path)
    # Opening a FIFO for writing returns once the runner opened it: it holds inside its first epoch.
    gate = open(fifos[0], "w")  # noqa: SIM115 - kept open until the end of the test
    with open(fifos[1], "w"):
        victim.send_signal(signal.SIGKILL)
        victim.communicate()

    s = _by_id(root)
    assert {k: v.state for k, v in s.items()} == {
        "new": "new",
        "completed": "completed",
        "preempted": "preempted",
        "failed": "failed",
        "badinput": "failed",
        "corrupt": "corrupt",
        "queued": "queued",
        "running": "running",
        "lost": "preempted",
    }
    assert s["completed"].epoch == 3 and s["completed"].epochs == 3 and s["completed"].attempts == 1
    assert s["preempted"].epoch == 1 and s["preempted"].last_exit == 75 and "SIGUSR1" in s["preempted"].reason
    assert s["failed"].retryable and "RuntimeError: boom at epoch 2" in s["failed"].reason
    assert not s["badinput"].retryable and "ckpt_keep_limit" in s["badinput"].reason
    assert "no checkpoint verifies" in s["corrupt"].reason and "is not valid JSON" in s["corrupt"].reason
    assert "died without recording an exit" in s["lost"].reason and s["lost"].extra.runner_lost
    assert s["queued"].pending_intent == 1
    text = table(list(s.values()))
    assert text.splitlines()[-1] == summary(list(s.values()))
    assert (
        summary(list(s.values()))
        == "9 tasks: 1 new, 1 queued, 1 running, 2 preempted, 2 failed, 1 completed, 1 corrupt"
    )
    gate.write("go\n")
    gate.close()
    runner.communicate()
    assert runner.returncode == 0


def test_malformed_files_are_reported_per_task_and_the_scan_carries_on(tmp_path: Path) -> None:
    root = tmp_path / "run"
    ok = preempted_task(root, "ok")
    bad_json = toy_task(root, "badjson")
    bad_json.task_file.write_text("{not json")
    torn = preempted_task(root, "torn")
    with open(torn.journal_file, "a") as f:
        f.write('{"event": "exi')
    garbled_state = preempted_task(root, "garbled")
    garbled_state.state_file.write_text("[]")
    dangling = preempted_task(root, "dangling")
    os.unlink(dangling.ckpts / "last")
    os.symlink("epochs/099", dangling.ckpts / "last")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    s = _by_id(root)
    assert s["ok"].state == "preempted" and s["torn"].state == "preempted" and s["torn"].attempts == 1
    assert s["badjson"].state == "failed" and "task.json: is not valid JSON" in s["badjson"].reason
    assert s["garbled"].state == "failed" and "state.json" in s["garbled"].reason
    assert s["dangling"].state == "preempted" and s["dangling"].epoch == 1  # falls back to epochs/001
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # scanning writes nothing
    assert ok.path.exists()


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _status(state: str, **kw: object) -> TaskStatus:
    return TaskStatus("t", state, "why", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "status, policy, action",
    [
        (_status("new"), Policy(), "submit"),
        (_status("running"), Policy(), "none"),
        (_status("queued"), Policy(), "none"),
        (_status("completed"), Policy(), "none"),
        (_status("preempted", preemptions=3), Policy(), "submit"),
        (_status("preempted", preemptions=50), Policy(), "give_up"),
        (
            _status("failed", failures=1, exit_age=5.0),
            Policy(),
            "wait",
        ),
        (
            _status("failed", failures=1, exit_age=31.0),
            Policy(),
            "submit",
        ),
        (
            _status("failed", failures=2, exit_age=40.0),
            Policy(max_failures=3),
            "wait",
        ),
        (_status("failed", failures=2), Policy(), "give_up"),
        (_status("failed", failures=0, retryable=False), Policy(), "give_up"),
        (_status("corrupt"), Policy(), "report"),
        (_status("corrupt"), Policy(restart_corrupt=True), "submit"),
        # ages are measured on this host's clock (coordinator/grace.py); stamps are never compared with it
        (_status("failed", failures=1, last_exit_time=(NOW - timedelta(seconds=900)).isoformat()), Policy(), "wait"),
        (_status("queued", pending_intent=1, intent_age=5.0), Policy(), "none"),
        (_status("queued", pending_intent=1, intent_age=90.0), Policy(), "reconcile"),
        (
            _status("queued", pending_intent=1, intent_time=(NOW - timedelta(seconds=900)).isoformat()),
            Policy(),
            "none",
        ),
    ],
)
def test_policy(status: TaskStatus, policy: Policy, action: str) -> None:
    assert decide(status, policy).action == action


def test_status_cli_json_and_bad_run_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from candle_restart.cli import main

    preempted_task(tmp_path / "run", "p")
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"] == "1 tasks: 1 preempted" and data["tasks"][0]["epoch"] == 1
    assert main(["status", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == f"candle-restart: {tmp_path / 'nope'}: is not a directory"


@pytest.mark.parametrize(
    "state, fragment",
    [
        ({"status": "running", "pid": None, "host": "vm"}, None),
        ({"status": "exploded"}, "unknown value 'exploded'"),
        ([], "must be a JSON object, got list"),
    ],
)
def test_malformed_state_is_reported_not_crashed_on_nor_resubmitted(
    tmp_path: Path, state: object, fragment: str | None
) -> None:
    task = preempted_task(tmp_path / "run", "m")
    task.state_file.write_text(json.dumps(state))
    [status] = scan(tmp_path / "run", BACKENDS)
    if fragment is None:  # a pid that is not a number: the runner cannot be alive
        assert status.state == "preempted"
    else:
        assert status.state == "failed" and not status.retryable and fragment in status.reason
        assert decide(status, Policy()).action == "give_up"


def test_status_says_when_the_newest_checkpoint_is_only_node_local(tmp_path: Path) -> None:
    """Two tiers: the coordinator reads the shared tier, and says when a node holds a newer one."""
    from candle_restart.records.localtier import LOCAL_TIER_FILE, LocalTierRecord
    from candle_restart.runtime.fsio import atomic_write_bytes

    task = preempted_task(tmp_path, "tiered")
    assert "node_local" not in obj(_by_id(tmp_path)["tiered"].to_json()["extra"])
    record = LocalTierRecord("node-b", "/dev/shm/x", 7, LocalTierRecord.now(), drained=False)
    atomic_write_bytes(task.ckpts / LOCAL_TIER_FILE, record.to_bytes())
    note = text(obj(_by_id(tmp_path)["tiered"].to_json()["extra"])["node_local"])
    assert "epochs/007 on node-b" in note and "only node-local" in note
    drained = LocalTierRecord("node-b", "/dev/shm/x", 7, record.time, drained=True)
    atomic_write_bytes(task.ckpts / LOCAL_TIER_FILE, drained.to_bytes())
    assert "node_local" not in obj(_by_id(tmp_path)["tiered"].to_json()["extra"])
