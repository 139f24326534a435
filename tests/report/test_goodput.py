"""Goodput's split of a task's wall time, on hand-made records whose true split is known.

Each case is a task's attempts (times in seconds from 0) and the parts it must give; every
case also checks that the parts sum to the wall time exactly.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from candle_restart.records.epochs import EVENTS_FILE
from candle_restart.records.journal import EXIT, START, SUBMIT_INTENT, JournalEvent
from candle_restart.records.jsontypes import JsonObject
from candle_restart.report.goodfacts import task_breakdown
from candle_restart.report.goodput import PARTS, AttemptFacts, CommitFacts, breakdown, total
from candle_restart.task import create_task

A, B = "epochs/002", "epochs/004"


def _parts(**given: float) -> dict[str, float]:
    return {name: given.get(name, 0.0) for name in PARTS}


CASES: dict[str, tuple[list[AttemptFacts], float, dict[str, float]]] = {
    # queued 4 s, 3 s of start-up and 2 s of restore, 20 s of training with two 1 s commit
    # blocks, 2 s to exit: everything it trained survived.
    "completed": (
        [
            AttemptFacts(
                1, started=0, ended=27, submitted=-4, status="completed", restore_seconds=2, restored_at=3,
                train_start=5, train_end=25, commits=(CommitFacts(10, 1, A), CommitFacts(20, 1, B)),
            )
        ],
        31,
        _parts(launch=4, startup=3, restore=2, checkpoint=2, productive=18, stopping=2),
    ),
    # preempted 4 s after the checkpoint the next attempt resumed from: 4 s lost.
    "preempted and resumed": (
        [
            AttemptFacts(
                1, started=0, ended=26, submitted=0, status="preempted", train_start=5, train_end=24,
                commits=(CommitFacts(10, 1, A), CommitFacts(20, 1, B)),
            ),
            AttemptFacts(
                2, started=30, ended=50, submitted=28, status="completed", restore_seconds=1, restored_at=32,
                resumed_key=B, train_start=33, train_end=49,
            ),
        ],
        50,
        _parts(
            productive=13 + 16, lost=4, checkpoint=2, startup=5 + 2, restore=1, stopping=2 + 1,
            launch=2, between=2,
        ),
    ),
    # the newer checkpoint was set aside: the resume took the older one; 14 s lost, one block in them.
    "resumed from the older checkpoint": (
        [
            AttemptFacts(
                1, started=0, ended=24, status="preempted", train_start=5, train_end=24,
                commits=(CommitFacts(10, 1, A), CommitFacts(20, 1, B)),
            ),
            AttemptFacts(2, started=24, ended=30, status="completed", resumed_key=A, train_start=25, train_end=30),
        ],
        30,
        _parts(productive=4 + 5, lost=13, checkpoint=2, startup=5 + 1),
    ),
    # the next attempt started fresh: nothing the first trained survived.
    "fresh start after": (
        [
            AttemptFacts(1, started=0, ended=10, status="preempted", train_start=2, train_end=10,
                         commits=(CommitFacts(6, 0.5, A),)),
            AttemptFacts(2, started=10, ended=20, status="completed", train_start=12, train_end=20),
        ],
        20,
        _parts(lost=7.5, checkpoint=0.5, startup=2 + 2, productive=8),
    ),
    # a failed attempt: all but its kept training is failed time; the retry resumed its checkpoint.
    "failed, then retried": (
        [
            AttemptFacts(1, started=0, ended=12, status="failed", train_start=2, train_end=11,
                         commits=(CommitFacts(6, 1, A),)),
            AttemptFacts(2, started=15, ended=20, status="completed", resumed_key=A, train_start=16, train_end=20),
        ],
        20,
        _parts(productive=3 + 4, failed=12 - 3, startup=1, between=3),
    ),
    # an executor's retry of the same submission: its launch starts at the previous attempt's end;
    # then the coordinator resubmits (a new submission, 2 s after the end).
    "retried by the executor": (
        [
            AttemptFacts(1, started=1, ended=5, submitted=0, status="preempted", train_start=2, train_end=5,
                         commits=(CommitFacts(5, 0, A),)),
            AttemptFacts(2, started=8, ended=10, submitted=0, status="preempted", resumed_key=A,
                         train_start=8, train_end=10, commits=(CommitFacts(10, 0, B),)),
            AttemptFacts(3, started=13, ended=15, submitted=12, status="completed", resumed_key=B,
                         train_start=13, train_end=15),
        ],
        15,
        _parts(launch=1 + 3 + 1, startup=1, productive=3 + 2 + 2, between=2),
    ),
    # Slurm said the job queued 7 s of the 10 s from the submission to the runner's start.
    "the scheduler's queue wait": (
        [AttemptFacts(1, started=0, ended=10, submitted=-10, scheduler_queue=7, status="completed",
                      train_start=1, train_end=10)],
        20,
        _parts(queue=7, launch=3, startup=1, productive=9),
    ),
    # a runner still running at now=40: up to its last commit counts as kept.
    "running": (
        [AttemptFacts(1, started=0, ended=None, status="running", train_start=10, train_end=35,
                      commits=(CommitFacts(30, 2, A),))],
        40,
        _parts(startup=10, productive=18, checkpoint=2, lost=5, stopping=5),
    ),
    # no train_start (an older writer): training begins at the restart's end.
    "no train_start": (
        [AttemptFacts(1, started=0, ended=10, status="completed", restore_seconds=1, restored_at=3, train_end=9)],
        10,
        _parts(restore=1, startup=2, productive=6, stopping=1),
    ),
    # the coordinator's clock is ahead: the submission is after the start; nothing goes negative.
    "skewed clocks": (
        [AttemptFacts(1, started=0, ended=10, submitted=3, status="completed", train_start=1, train_end=10)],
        10,
        _parts(startup=1, productive=9),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_each_part_of_a_known_split(name: str) -> None:
    attempts, wall, expected = CASES[name]
    got = breakdown(attempts, now=40)
    assert got.wall == pytest.approx(wall)
    assert {k: round(v, 9) for k, v in got.parts.items()} == pytest.approx(expected), name
    assert math.fsum(got.parts.values()) == pytest.approx(got.wall, abs=1e-9)
    assert all(v >= 0 for v in got.parts.values())
    assert got.goodput == pytest.approx(expected["productive"] / wall)
    assert sum(a.wall for a in got.attempts) == pytest.approx(sum((a.ended or 40) - a.started for a in attempts))


def test_a_sweep_sums_its_tasks_and_badput_is_largest_first() -> None:
    one = breakdown(CASES["completed"][0], now=40)
    two = breakdown(CASES["preempted and resumed"][0], now=40)
    both = total([one, two])
    assert both.wall == pytest.approx(81)
    assert both.productive == pytest.approx(18 + 29)
    assert list(both.badput())[:2] == ["startup", "launch"]
    doc = both.to_json()
    assert doc["wall_seconds"] == 81 and doc["goodput"] == round(47 / 81, 4)
    assert doc["queue_wait_seconds"] is None  # no scheduler said: unknown, not zero
    assert doc["halt_unused_seconds"] == 0  # no attempt halted before a walltime


def test_queue_wait_is_known_only_where_every_attempt_has_the_schedulers_figure() -> None:
    slurm = breakdown(CASES["the scheduler's queue wait"][0], now=40)
    assert slurm.queue_wait == 7 and slurm.to_json()["queue_wait_seconds"] == 7
    assert total([slurm, slurm]).queue_wait == 14
    local = breakdown(CASES["completed"][0], now=40)
    assert local.queue_wait is None and total([slurm, local]).queue_wait is None


def test_the_halt_margin_left_unused_is_the_allocation_after_the_runners_end() -> None:
    halted = AttemptFacts(1, started=0, ended=50, status="preempted", cause="timeout", allocation_end=56,
                          train_start=2, train_end=49, commits=(CommitFacts(49, 0, A),))
    resumed = AttemptFacts(2, started=60, ended=70, status="completed", resumed_key=A, train_start=61, train_end=70)
    got = breakdown([halted, resumed], now=80)
    assert got.halt_unused == 6 and got.to_json()["halt_unused_seconds"] == 6
    assert got.attempts[0].halt_unused == 6 and got.attempts[1].halt_unused == 0
    assert math.fsum(got.parts.values()) == pytest.approx(got.wall)  # a figure beside the parts, not one of them
    unknown = AttemptFacts(1, started=0, ended=50, status="preempted", cause="timeout", train_start=2, train_end=49)
    assert breakdown([unknown, resumed], now=80).halt_unused is None  # a halt whose allocation end is not recorded
    signalled = AttemptFacts(1, started=0, ended=50, status="preempted", cause="preempted", allocation_end=99)
    assert breakdown([signalled], now=80).halt_unused == 0  # only halts before the walltime leave a margin


def test_no_attempts_is_no_wall_time() -> None:
    assert breakdown([], now=5).wall == 0 and breakdown([], now=5).goodput is None


def test_records_read_into_facts_and_a_bad_events_file_counts_nothing_as_productive(tmp_path: Path) -> None:
    task = create_task(tmp_path / "run", {"epochs": 2}, entry="tests.coordinator.toy:run", sweep="g")
    task.append_journal(JournalEvent(SUBMIT_INTENT, time="2026-01-01T00:00:00.000+00:00", generation=1))
    task.append_run_event(JournalEvent(START, time="2026-01-01T00:00:03.000+00:00", attempt=1, generation=1))
    task.append_run_event(
        JournalEvent(EXIT, time="2026-01-01T00:00:13.000+00:00", attempt=1, status="completed", exit_code=0)
    )
    task.ckpts.mkdir(parents=True, exist_ok=True)
    lines = [
        {"kind": "restart", "time": "2026-01-01T00:00:04.000+00:00", "seconds": 0.5},
        {"kind": "train_start", "time": "2026-01-01T00:00:05.000+00:00"},
        {"kind": "epoch", "time": "2026-01-01T00:00:12.000+00:00", "epoch": 2},
        {"kind": "epoch", "time": "2026-01-01T00:01:00.000+00:00", "epoch": 3},  # after the attempt: not its
    ]
    (task.ckpts / EVENTS_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    got = task_breakdown(task.path)
    assert got.wall == pytest.approx(13)
    assert got.parts == pytest.approx(_parts(launch=3, restore=0.5, startup=1.5, productive=7, stopping=1))
    assert got.queue_wait is None  # the local backend's runner records no scheduler queue

    (task.ckpts / EVENTS_FILE).write_text('{"kind": "epoch", "time": "x", "epoch": "two"}\n')
    bad = task_breakdown(task.path)
    assert bad.wall == pytest.approx(13) and bad.productive == 0 and bad.parts["stopping"] == pytest.approx(10)


def test_slurm_records_give_the_queue_wait_and_the_unused_halt_margin(tmp_path: Path) -> None:
    """The runner's ``start`` under Slurm holds the scheduler's queue wait and the allocation's end."""
    task = create_task(tmp_path / "run", {"epochs": 2}, entry="tests.coordinator.toy:run", sweep="g")
    task.append_journal(JournalEvent(SUBMIT_INTENT, time="2026-01-01T00:00:00.000+00:00", generation=1))
    slurm: JsonObject = {"job_id": "7", "queue_seconds": 6.0, "allocation_end": "2026-01-01T00:01:08+00:00"}
    task.append_run_event(
        JournalEvent(START, time="2026-01-01T00:00:08.000+00:00", attempt=1, generation=1, extras=slurm)
    )
    task.append_run_event(
        JournalEvent(
            EXIT, time="2026-01-01T00:01:00.000+00:00", attempt=1, status="preempted", exit_code=75, cause="timeout"
        )
    )
    got = task_breakdown(task.path, now=datetime(2026, 1, 1, 0, 2, tzinfo=timezone.utc).timestamp())
    assert got.wall == pytest.approx(60)
    assert got.parts["queue"] == pytest.approx(6) and got.parts["launch"] == pytest.approx(2)
    doc = got.to_json()
    assert doc["queue_wait_seconds"] == 6 and doc["halt_unused_seconds"] == 8
