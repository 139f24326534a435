"""The order of a task's events is the files', never the clocks' (issue 27, item 2).

Each line's ``time`` is its writer's clock, and hosts' clocks disagree: lines of one file keep the
order in which they were appended, and the coordinators' and the runners' files interleave by
what the journal's writer had seen of the runners' file (``runs_seen``).  The lines below are
written as the other hosts would have written them: their only link to another host is the file.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from candle_restart.records import journal
from candle_restart.records.journal import (
    EXIT,
    RETRY_REQUESTED,
    START,
    SUBMIT_ABANDONED,
    SUBMIT_INTENT,
    SUBMITTED,
    JournalEvent,
)

NOW = datetime.now(timezone.utc)


def _at(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


def _kinds(task: Path) -> list[str]:
    return [f"{e.kind}:{e.generation}" for e in journal.read(task / "journal.jsonl", task / "runs.jsonl")]


def test_lines_of_one_file_keep_their_order_whatever_their_clocks(tmp_path: Path) -> None:
    """A coordinator 10 minutes behind the one that wrote an intent and died abandons it: its line
    comes after the intent, as it was appended (sorted by time it came first, and the intent looked
    pending for ever)."""
    path = tmp_path / "journal.jsonl"
    journal.append(path, JournalEvent(SUBMIT_INTENT, generation=1, time=_at(+10)))  # host A, ahead
    journal.append(path, JournalEvent(SUBMIT_ABANDONED, generation=1, time=_at(0)))  # host B
    journal.append(path, JournalEvent(SUBMIT_INTENT, generation=2, time=_at(0)))
    assert _kinds(tmp_path) == ["submit_intent:1", "submit_abandoned:1", "submit_intent:2"]


def test_runners_lines_interleave_by_what_the_coordinator_had_seen(tmp_path: Path) -> None:
    """Runners 10 minutes ahead of the coordinator: its ``retry_requested``, written after their
    exits, comes after them (so the counts it restarts are those before it)."""
    runs, coordinator = tmp_path / "runs.jsonl", tmp_path / "journal.jsonl"
    journal.append(coordinator, JournalEvent(SUBMIT_INTENT, generation=1, time=_at(0)))
    journal.append(runs, JournalEvent(START, generation=1, time=_at(+10)))
    journal.append(coordinator, JournalEvent(SUBMITTED, generation=1, time=_at(0.1)))
    journal.append(runs, JournalEvent(EXIT, generation=1, status="failed", time=_at(+10.2)))
    journal.append(coordinator, JournalEvent(RETRY_REQUESTED, time=_at(0.5)))  # behind the runners
    journal.append(runs, JournalEvent(START, generation=2, time=_at(+10.3)))
    assert _kinds(tmp_path) == [
        "submit_intent:1",
        "start:1",
        "submitted:1",
        "exit:1",
        "retry_requested:None",
        "start:2",
    ]
    assert [json.loads(line).get("runs_seen") for line in coordinator.read_text().splitlines()] == [0, 1, 2]


def test_runners_behind_the_coordinator_are_ordered_the_same(tmp_path: Path) -> None:
    runs, coordinator = tmp_path / "runs.jsonl", tmp_path / "journal.jsonl"
    journal.append(coordinator, JournalEvent(SUBMIT_INTENT, generation=1, time=_at(0)))
    journal.append(runs, JournalEvent(START, generation=1, time=_at(-10)))
    journal.append(runs, JournalEvent(EXIT, generation=1, status="failed", time=_at(-9.9)))
    journal.append(coordinator, JournalEvent(RETRY_REQUESTED, time=_at(0.5)))
    assert _kinds(tmp_path) == ["submit_intent:1", "start:1", "exit:1", "retry_requested:None"]


def test_lines_from_before_runs_seen_interleave_by_time_keeping_each_files_order(tmp_path: Path) -> None:
    runs, coordinator = tmp_path / "runs.jsonl", tmp_path / "journal.jsonl"
    coordinator.write_text(
        "".join(
            json.dumps(line) + "\n"
            for line in (
                {"time": _at(0), "event": "submit_intent", "generation": 1},
                {"time": _at(2), "event": "submitted", "generation": 1},
                {"time": _at(1), "event": "submit_intent", "generation": 2},  # a clock stepped back
            )
        )
    )
    runs.write_text(json.dumps({"time": _at(1.5), "event": "start", "generation": 1}) + "\n")
    assert _kinds(tmp_path) == ["submit_intent:1", "start:1", "submitted:1", "submit_intent:2"]


def test_a_generation_out_of_range_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(
        '{"event":"submit_intent","generation":' + "9" * 99 + "}\n"
        '{"event":"submit_intent","generation":-1}\n'
        '{"event":"submit_intent","generation":3}\n'
    )
    assert [e.generation for e in journal.read_file(path)] == [3]
