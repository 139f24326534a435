"""The task-level records: ``task.json``, ``state.json``, the journal, the sweep manifest and the
lease holder.  Files written by the version before these records (copied below as it wrote them)
read back to the same content; bad values are one line naming the file and the key."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from candle_restart.records import journal, manifest
from candle_restart.records.holder import HolderError, HolderRecord
from candle_restart.records.journal import EXIT, NO_CKPT_KEY, START, JournalEvent
from candle_restart.records.manifest import ManifestError, SweepManifest
from candle_restart.records.taskspec import TaskError, TaskSpec
from candle_restart.records.taskstate import MetricSummary, StateError, TaskState
from candle_restart.runtime.lease import Lease
from candle_restart.task import TaskDir, create_task

OLD_TASK = """{
 "schema_version": 1,
 "task_id": "pre-30d0791ac6f9",
 "params": {
  "epochs": 3,
  "preempt_at": 1
 },
 "entry": "tests.coordinator.toy:run",
 "command": null,
 "sweep": "pre",
 "created": "2026-11-30T23:22:55.100+00:00"
}
"""
OLD_STATE = """{
 "status": "preempted",
 "attempt": 1,
 "exit_code": 75,
 "reason": "SIGUSR1 received; stopped after epoch 1",
 "cause": "preempted",
 "error_tail": [],
 "started": "2026-11-30T23:22:55.156+00:00",
 "ended": "2026-11-30T23:22:55.373+00:00",
 "host": "vm",
 "pid": 27987,
 "job_id": "123",
 "pid_start": 3610382,
 "generation": 0,
 "checkpoint": {
  "dir": "001",
  "epoch": 1,
  "epochs": 3,
  "complete": false,
  "position": null,
  "best_metric_last": 1.0,
  "best_epoch": 1,
  "save_best_metric": "val_loss",
  "best_mode": "min",
  "timestamp": "2026-11-30 23:22:55"
 },
 "result": null,
 "metric": {
  "name": "val_loss",
  "mode": "min",
  "best": 1.0,
  "best_epoch": 1,
  "final": null
 },
 "task_id": "pre-30d0791ac6f9",
 "updated": "2026-11-30T23:22:55.373+00:00"
}
"""
OLD_JOURNAL = [
    '{"time":"2026-11-30T23:22:52.780+00:00","event":"submit_intent","generation":1,"backend":"local",'
    '"reason":"new task","batch":null,"by":{"host":"vm","pid":27987}}',
    '{"time":"2026-11-30T23:22:52.816+00:00","event":"submitted","generation":1,"submission":'
    '{"backend":"local","generation":1,"host":"vm","pid":28061,"start":3610614}}',
    '{"time":"2026-11-30T23:24:00.000+00:00","event":"retry_requested","state":"failed","failures":2,'
    '"preemptions":0,"reason":"x","by":{"host":"vm","pid":1}}',
]
OLD_RUNS = [
    '{"time":"2026-11-30T23:22:53.930+00:00","event":"start","attempt":1,"host":"vm","pid":28061,'
    '"pid_start":3610614,"generation":1}',
    '{"time":"2026-11-30T23:22:55.044+00:00","event":"exit","attempt":1,"exit_code":0,"status":"completed",'
    '"reason":"the training returned","cause":null,"ckpt":"2:None:2026-11-30 23:22:54","host":"vm",'
    '"pid":28061,"pid_start":3610614,"generation":1}',
]


def test_task_json_of_the_previous_version_reads_and_writes_back_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "task.json"
    path.write_text(OLD_TASK)
    spec = TaskSpec.read(path)
    assert spec.params == {"epochs": 3, "preempt_at": 1} and spec.entry == "tests.coordinator.toy:run"
    assert spec.python_path == [] and spec.dir_flags is True
    assert spec.to_bytes().decode() == OLD_TASK


def test_task_json_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    bad = json.loads(OLD_TASK) | {"entry": "no colon"}
    with pytest.raises(TaskError) as info:
        TaskSpec.from_json(bad, "run/t/task.json")
    assert str(info.value) == "run/t/task.json: entry: must look like package.module:function, got 'no colon'"
    path = tmp_path / "task.json"
    with pytest.raises(TaskError, match=r"task\.json: is missing"):
        TaskSpec.read(path)
    path.write_text('{"task_id": ')
    with pytest.raises(TaskError, match=r"task\.json: is not valid JSON"):
        TaskSpec.read(path)


def test_state_json_of_the_previous_version_reads_and_writes_back_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(OLD_STATE)
    state = TaskState.read(path)
    assert state.status == "preempted" and state.exit_code == 75 and state.job_id == "123"
    assert state.metric == MetricSummary("val_loss", "min", 1.0, 1, None)
    assert state.checkpoint is not None and state.checkpoint["dir"] == "001"
    assert state.to_bytes().decode() == OLD_STATE


def test_state_keys_of_other_versions_are_kept_and_a_running_state_writes_only_what_it_has() -> None:
    state = TaskState.from_json({"status": "running", "attempt": 2, "future_key": [1, 2]}, "state.json")
    assert state.extras == {"future_key": [1, 2]}
    assert state.to_json() == {"status": "running", "attempt": 2, "future_key": [1, 2]}
    queued = TaskState("queued", generation=3, reason="new task")
    assert json.loads(queued.to_bytes()) == {"status": "queued", "reason": "new task", "generation": 3}


def test_state_non_finite_numbers_are_written_as_null() -> None:
    state = TaskState("completed", ended="now", result={"loss": math.inf, "acc": [math.nan, 0.5]})
    data = json.loads(state.to_bytes(), parse_constant=lambda c: pytest.fail(f"wrote {c}"))
    assert data["result"] == {"loss": None, "acc": [None, 0.5]}
    assert data["exit_code"] is None and data["metric"] is None  # an end writes its keys, null or not


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "state.json: must be a JSON object, got list"),
        ({}, "state.json: status: missing or not a string"),
        (
            {"status": "exploded"},
            "state.json: status: unknown value 'exploded' (expected one of running, queued, completed, "
            "preempted, failed, bad_input, pruned)",
        ),
        ({"status": "running", "pid": "12"}, "state.json: pid: must be an integer or null, got '12'"),
        ({"status": "running", "pid": True}, "state.json: pid: must be an integer or null, got True"),
        (
            {"status": "failed", "checkpoint": [1]},
            "state.json: checkpoint: must be an object or null, got [1]",
        ),
        ({"status": "failed", "metric": {"name": 3}}, "state.json: metric.name: must be a string, got 3"),
        (
            {"status": "failed", "error_tail": 5},
            "state.json: error_tail: must be a list of strings, got 5",
        ),
    ],
)
def test_state_errors_are_one_line_naming_the_key(data: object, message: str) -> None:
    with pytest.raises(StateError) as info:
        TaskState.from_json(data, "state.json")  # type: ignore[arg-type]
    assert str(info.value) == message


def test_state_unreadable_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"status":"\xff"}')
    with pytest.raises(StateError) as info:
        TaskState.read(path)
    assert str(info.value).startswith(f"{path}: unreadable: is not UTF-8")


def test_journal_lines_of_the_previous_version_read_back_to_the_same_objects(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text("\n".join(OLD_JOURNAL) + "\n")
    (tmp_path / "runs.jsonl").write_text("\n".join(OLD_RUNS) + "\n")
    events = journal.read(tmp_path / "journal.jsonl", tmp_path / "runs.jsonl")
    assert [e.kind for e in events] == ["submit_intent", "submitted", "start", "exit", "retry_requested"]
    start, end = events[2], events[3]
    assert start.attempt == 1 and start.generation == 1 and start.extras["pid_start"] == 3610614
    assert end.ckpt == "2:None:2026-11-30 23:22:54" and end.cause is None and end.status == "completed"
    for event, line in zip(events, [*OLD_JOURNAL[:2], *OLD_RUNS, OLD_JOURNAL[2]], strict=True):
        written = {k: v for k, v in json.loads(line).items() if v is not None or k in ("cause", "ckpt")}
        assert event.to_json() == written  # a null batch is left out, as absent


def test_journal_keeps_absent_and_null_checkpoint_keys_apart(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    journal.append(path, JournalEvent(EXIT, status="failed", ckpt=None))
    path.write_text(path.read_text() + '{"time":"9","event":"exit","status":"failed"}\n')
    older, newer = journal.read_file(path)
    assert older.ckpt is None and '"ckpt":null' in path.read_text().splitlines()[0]
    assert newer.ckpt == NO_CKPT_KEY and "ckpt" not in newer.to_json()


def test_journal_skips_torn_unknown_and_ill_typed_lines_and_merges_by_time(tmp_path: Path) -> None:
    coordinators, runners = tmp_path / "journal.jsonl", tmp_path / "runs.jsonl"
    coordinators.write_text(
        '{"time":"2","event":"submit_intent","generation":1}\n'
        '{"time":"3","event":"no_such_event"}\n'
        '{"time":"3","event":"submitted","generation":[1]}\n'
        '{"time":"3","event":"submitted","generation":1,"submission":{"pid":"x"}}\n'
        '{"time":"3","event":"exit","ckpt":5}\n'
        "[1]\n"
        '{"time":"4","event":"submitted","generation":1}\n'
    )
    runners.write_text(
        '{"time":"1","event":"start","attempt":1}\n{"time":"4","event":"start","attempt":2}\n{"time":"5","ev'
    )
    events = journal.read(coordinators, runners)
    assert [(e.time, e.kind) for e in events] == [
        ("1", "start"),
        ("2", "submit_intent"),
        ("4", "submitted"),  # equal times: the journal's first, each file's order kept
        ("4", "start"),
    ]


def test_journal_append_writes_one_strict_json_line_with_a_time(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    journal.append(path, JournalEvent(START, attempt=1, extras={"loss": math.nan}))
    [line] = path.read_text().splitlines()
    data = json.loads(line, parse_constant=lambda c: pytest.fail(f"wrote {c}"))
    assert list(data)[:2] == ["time", "event"] and data["event"] == "start" and data["loss"] is None


def test_task_dir_writes_through_the_records(tmp_path: Path) -> None:
    task = create_task(tmp_path, {"epochs": 2}, command=["true"], sweep="rec")
    assert TaskSpec.from_json(json.loads(task.task_file.read_text()), "t") == task.load_spec()
    task.write_state(TaskState("queued", generation=1, reason="new task"))
    state, problem = task.load_state()
    assert problem is None and state is not None and state.task_id == task.task_id and state.updated
    task.append_journal({"event": "submit_intent", "generation": 1})
    with pytest.raises(ValueError, match="event: unknown value 'nonsense'"):
        task.append_journal({"event": "nonsense"})
    assert [e.kind for e in TaskDir(task.path).events()] == ["submit_intent"]


def test_manifest_of_the_previous_version_reads_and_bad_ones_name_the_key(tmp_path: Path) -> None:
    older = {"name": "s", "entry": "m:f", "command": None, "params": {"lr": 0.1}, "varied": ["lr"]}
    path = manifest.manifest_path(tmp_path, "s")
    path.write_text(json.dumps(older, indent=1) + "\n")
    record = SweepManifest.read(path)
    assert record == SweepManifest("s", "m:f", None, {"lr": 0.1}, ["lr"]) and record.restart is None
    current = SweepManifest("s", "m:f", None, {"lr": 0.1}, ["lr"], {}, {"max_failures": 3})
    path.write_bytes(current.to_bytes())
    assert SweepManifest.read(path) == current and manifest.find(tmp_path) == [path]
    path.write_text(json.dumps(older | {"params": [1]}))
    with pytest.raises(ManifestError) as info:
        SweepManifest.read(path)
    assert str(info.value) == f"{path}: params: must be a JSON object, got list"


def test_lease_holder_record_is_written_and_read_by_the_record(tmp_path: Path) -> None:
    lease = Lease(tmp_path / ".run.lock", "the runner of task t")
    lease.acquire()
    try:
        record = HolderRecord.read(lease.holder_file)
        assert record.what == "the runner of task t" and record.since == lease.since and record.token
        assert HolderRecord.from_json(json.loads(lease.holder_file.read_text()), "h") == record
        assert f"since {lease.since}" in lease.describe()
    finally:
        lease.release()
    assert not lease.holder_file.exists()
    with pytest.raises(HolderError, match="pid: must be an integer, got"):
        HolderRecord.from_json({"what": "w", "host": "h", "pid": "1", "since": None, "token": None}, "h")


def test_a_claim_file_reads_back_as_its_record(tmp_path: Path) -> None:
    from candle_restart.records.holder import ClaimRecord, claim_name

    path = tmp_path / claim_name(7)
    claim = ClaimRecord("node1", 42, "2026-01-01T00:00:00+00:00")
    path.write_bytes(claim.to_bytes())
    assert ClaimRecord.read(path) == claim
    path.write_text('{"host": "node1", "pid": "42", "time": "t"}')
    with pytest.raises(HolderError) as refused:
        ClaimRecord.read(path)
    assert str(refused.value) == f"{path}: pid: must be an integer, got '42'"
