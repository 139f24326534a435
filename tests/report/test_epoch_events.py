"""The report reads ``ckpts/events.jsonl``; ``ckpt.log`` is parsed only for a task written before events existed.

Real runs of the report tests' trainer (real commits, real signals), reported three ways: as
written (events and log), with the events removed (a task from before events: the old log
parser), and with the log removed (the events alone). All three must be the same report.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from candle_restart.ckpt.layout import LOG_FILE
from candle_restart.records.epochs import EVENTS_FILE, EpochEvent
from candle_restart.records.jsontypes import JsonObject
from candle_restart.report.collect import TaskReport, collect
from candle_restart.report.epochlog import sessions_from_events
from candle_restart.task import create_task, run_task
from tests.helpers import ROOT, TRAINER

# Curves with at most 6 decimals: ckpt.log prints metric values with 6, events.jsonl keeps them whole.
TASKS: dict[str, tuple[JsonObject, list[int]]] = {
    "completed": ({"epochs": 4, "curve": [0.9, 0.8, 0.7, 0.6]}, [0]),
    # epoch 3 is worse and not on the interval: the restart after it goes back to epoch 2.
    "resumed": (
        {"epochs": 6, "curve": [0.9, 0.7, 0.75, 0.6, 0.62, 0.5], "ckpt_save_interval": 2, "preempt_at": [3]},
        [75, 0],
    ),
    "midepoch": ({"epochs": 4, "curve": [0.9, 0.8, 0.7, 0.6], "stop_inside": [3, 5]}, [75, 0]),
    "nobest": ({"epochs": 5, "ckpt_save_best": False, "ckpt_save_interval": 2, "preempt_at": [3]}, [75, 0]),
    "twice": ({"epochs": 5, "curve": [0.5, 0.4, 0.3, 0.2, 0.1], "preempt_at": [2, 3]}, [75, 75, 0]),
    "failed": ({"epochs": 4, "curve": [0.9, 0.8, 0.7, 0.6], "fail_at": 2}, [1]),
    "skipped": ({"epochs": 4, "curve": [0.9, 0.8, 0.7, 0.6], "ckpt_skip_epochs": 3}, [0]),
}


@pytest.fixture(scope="module")
def run_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The run root as written, and copies without events (before events) and without the log."""
    base = tmp_path_factory.mktemp("events")
    root = base / "written"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(ROOT))
        for name, (params, codes) in TASKS.items():
            task = create_task(root, params, entry=TRAINER, sweep=name)
            assert [run_task(task.path) for _ in codes] == codes
    roots = {"written": root}
    for kind, remove in (("log only", EVENTS_FILE), ("events only", LOG_FILE)):
        roots[kind] = base / kind.replace(" ", "-")
        shutil.copytree(root, roots[kind], symlinks=True)
        for folder in roots[kind].iterdir():
            if not folder.name.startswith("."):
                (folder / "ckpts" / remove).unlink()
    return roots


def _reports(root: Path) -> dict[str, TaskReport]:
    return {t.task_id.split("-")[0]: t for t in collect(root)}


def _comparable(report: TaskReport) -> dict[str, object]:
    """What the page shows of a task, less where the epochs were read from, the status and the
    goodput (read from events.jsonl alone: a task before events has no training facts)."""
    fields = asdict(report)
    for key in ("status", "attempts", "index", "goodput"):
        fields.pop(key)
    fields["resumes"] = [(r["epoch"], r["mid_epoch"]) for r in fields["resumes"]]
    return fields


def test_the_report_from_events_equals_the_one_parsed_from_ckpt_log(run_roots: dict[str, Path]) -> None:
    written, log_only, events_only = (_reports(run_roots[k]) for k in ("written", "log only", "events only"))
    assert set(written) == set(TASKS)
    for name in TASKS:
        from_events, from_log = _comparable(written[name]), _comparable(log_only[name])
        if name == "skipped":  # the one difference: ckpt.log has no metric for an epoch it did not save
            assert from_events.pop("values") == {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.6}
            assert from_log.pop("values") == {3: 0.7, 4: 0.6}
        assert from_events == from_log, name
        assert _comparable(written[name]) == _comparable(events_only[name]), name
        assert not written[name].problems, written[name].problems
    # Where each report's restarts came from: the events when there are any, else the log.
    assert {r.source for t in written.values() for r in t.resumes} == {"events.jsonl"}
    assert {r.source for t in events_only.values() for r in t.resumes} == {"events.jsonl"}
    assert {r.source for t in log_only.values() for r in t.resumes} == {"ckpt.log"}


def test_what_the_events_report_of_each_task(run_roots: dict[str, Path]) -> None:
    tasks = _reports(run_roots["events only"])  # no ckpt.log at all
    resumed = tasks["resumed"]
    assert resumed.values == {1: 0.9, 2: 0.7, 3: 0.75, 4: 0.6, 5: 0.62, 6: 0.5}
    assert [(r.epoch, r.mid_epoch) for r in resumed.resumes] == [(2, False)]
    assert (resumed.epochs_trained, resumed.epochs_redone, resumed.metric) == (7, 1, "val_loss")
    assert [(r.epoch, r.mid_epoch) for r in tasks["midepoch"].resumes] == [(2, True)]
    assert (tasks["midepoch"].epochs_trained, tasks["midepoch"].epochs_redone) == (4, 0)
    nobest = tasks["nobest"]
    assert nobest.values == {} and (nobest.epochs_trained, nobest.epochs_redone) == (6, 1)
    assert [r.epoch for r in tasks["twice"].resumes] == [2, 3]
    assert tasks["failed"].epochs_trained == 2 and tasks["failed"].resumes == []
    skipped = tasks["skipped"]  # saving disabled for epochs 1 and 2
    assert (skipped.epochs_trained, skipped.epochs_redone, sorted(skipped.kept)) == (4, 0, [3, 4])


def test_a_malformed_events_file_is_a_problem_and_the_log_is_read_instead(
    run_roots: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "run"
    shutil.copytree(run_roots["written"], root, symlinks=True)
    [task] = [p for p in root.iterdir() if p.name.startswith("resumed-")]
    events = task / "ckpts" / EVENTS_FILE
    with events.open("a") as f:
        f.write('{"kind":"epoch","time":"2026-01-01T00:00:00+00:00","epoch":"seven"}\n')
    before = events.read_bytes()
    report = _reports(root)["resumed"]
    [problem] = report.problems
    lines = before.count(b"\n")
    assert problem == (
        f"{events}: line {lines}: epoch: must be an integer >= 0, got 'seven'; "
        "epochs read from ckpt.log instead"
    )
    assert [(r.epoch, r.source) for r in report.resumes] == [(2, "ckpt.log")]
    assert report.values == _reports(run_roots["written"])["resumed"].values
    assert events.read_bytes() == before


def test_a_task_from_before_events_without_a_log_is_reported_from_its_checkpoints(
    run_roots: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "run"
    shutil.copytree(run_roots["log only"], root, symlinks=True)
    [task] = [p for p in root.iterdir() if p.name.startswith("completed-")]
    (task / "ckpts" / LOG_FILE).unlink()
    report = _reports(root)["completed"]
    assert report.epochs_redone is None and report.resumes == [] and not report.problems
    assert report.values == {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.6}  # each was the best: from its checkpoint


T = "2026-01-01T00:00:00+00:00"


def _epoch(n: int, value: float | None) -> EpochEvent:
    return EpochEvent(kind="epoch", time=T, epoch=n, metric="loss", value=value, mode="min")


def _commit(n: int, position: dict[str, int] | None = None) -> EpochEvent:
    return EpochEvent(
        kind="commit", time=T, epoch=n, path=f"epochs/{n:03d}", position=position, reason="epoch"
    )


def test_late_commits_of_asynchronous_checkpoints_change_nothing() -> None:
    in_order = [_epoch(1, 0.5), _commit(1), _epoch(2, 0.4), _commit(2), _epoch(3, 0.3), _commit(3)]
    late = [_epoch(1, 0.5), _epoch(2, 0.4), _commit(1), _epoch(3, 0.3), _commit(2), _commit(3)]
    for events in (in_order, late):
        log = sessions_from_events(events)
        assert log.values() == {1: 0.5, 2: 0.4, 3: 0.3} and (log.trained, log.redone) == (3, 0)
        assert len(log.sessions) == 1 and log.metric == "loss"


def test_sessions_without_restart_events_and_commits_without_epoch_events() -> None:
    # A script that never calls restart and saves with save_epoch only; then one that calls
    # ckpt_epoch, from scratch again without restart: epoch 1 ending again starts a session.
    events = [_commit(1), _commit(2, {"epoch": 2, "batch": 3}), _commit(2), _epoch(1, 0.5), _commit(1)]
    log = sessions_from_events(events)
    assert [s.epoch_ends for s in log.sessions] == [[(1, None), (2, None)], [(1, 0.5)]]
    assert [s.resumed_from for s in log.sessions] == [None, None] and log.redone == 1
    # A restart after epoch 2, whose commit (epoch 3) is reported before epoch 3's own event.
    events = [
        EpochEvent(kind="restart", time=T, epoch=2, path="epochs/002"),
        _commit(2),  # not an epoch end of this session: it resumed after epoch 2
        _epoch(3, 0.3),
        _commit(3),
    ]
    [session] = sessions_from_events(events).sessions
    assert session.resumed_from == 2 and session.epoch_ends == [(3, 0.3)]
