"""Classification's pure steps as tables: `summarize` the journal, `classify` the facts, and the
questions (`asks_*`) the facts leave open.  No file, process or clock: each row is the facts a
gatherer would have found (the real files of each case: ``test_classify_and_policy.py``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from candle_restart.coordinator import rules, states
from candle_restart.coordinator.causes import UNKNOWN
from candle_restart.coordinator.facts import CkptFacts, JournalFacts, Probes, TaskFacts, summarize
from candle_restart.coordinator.states import classify
from candle_restart.records.journal import JournalEvent
from candle_restart.records.jsontypes import JsonValue
from candle_restart.records.search import PruneRecord
from candle_restart.records.taskspec import TaskSpec
from candle_restart.records.taskstate import TaskState, TaskStatusName
from candle_restart.task import create_task

ENTRY = TaskSpec("t", {"epochs": 3}, entry="toy:train")
COMMAND = TaskSpec("t", {"epochs": 3}, command=["train.sh"])
CKPT = CkptFacts(epoch=2, epochs=3, complete=True, key="2:0:k")


def event(kind: str, **fields: JsonValue) -> JournalEvent:
    return JournalEvent.from_json({"event": kind, **fields}, "test")


def submitted(backend: str = "slurm", generation: int = 1) -> list[JournalEvent]:
    submission: JsonValue = {"backend": backend, "generation": generation, "job_id": "42"}
    return [
        event("submit_intent", generation=generation),
        event("submitted", generation=generation, submission=submission),
    ]


def ran(status: str, **fields: JsonValue) -> list[JournalEvent]:
    """One attempt of generation 1 that ended with ``status``."""
    return [event("start", attempt=1, generation=1), event("exit", status=status, **fields)]


def runner(status: TaskStatusName, **fields: object) -> TaskState:
    return TaskState(status, **fields)  # type: ignore[arg-type]


RUNNING = runner("running", pid=7, host="h", pid_start=1)


def facts(
    state: TaskState | None = None,
    events: list[JournalEvent] | None = None,
    probes: Probes | None = None,
    **kw: object,
) -> TaskFacts:
    base = TaskFacts(
        "t",
        ENTRY,
        journal=summarize(events or []),
        ckpt=CKPT,
        state=state,
        state_problem=None if state else "no state.json",
        probes=probes or Probes(),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


LOST = facts(RUNNING, [*submitted(), event("start", attempt=1, generation=1)], Probes("ended", "ended"))

# id: facts -> state, a fragment of the reason, retryable, cause, runner lost
TABLE: dict[str, tuple[TaskFacts, str, str, bool, str | None, bool]] = {
    "never submitted": (facts(), "new", "never submitted", True, None, False),
    "bad task.json": (
        TaskFacts("t", bad_spec="task.json: params: missing"),
        "failed",
        "bad input: task.json: params: missing",
        False,
        None,
        False,
    ),
    "intent without outcome": (
        facts(events=submitted()[:1]),
        "queued",
        "submission 1 intended, outcome not recorded",
        True,
        None,
        False,
    ),
    "submitted, scheduler pending": (
        facts(events=submitted(), probes=Probes(scheduler="pending")),
        "queued",
        "submission 1 is pending",
        True,
        None,
        False,
    ),
    "submitted, no such backend here": (facts(events=submitted()), "queued", "submission 1 is unknown", True, None, False),
    "submitted, starting": (
        facts(events=submitted(), probes=Probes(scheduler="running")),
        "running",
        "submission 1 is starting",
        True,
        None,
        False,
    ),
    "submitted, ended before its runner": (
        facts(events=submitted(), probes=Probes(scheduler="ended")),
        "failed",
        "ended before its runner started",
        True,
        None,
        False,
    ),
    "queued without a submission": (
        facts(runner("queued")),
        "failed",
        "state.json says queued but the journal has no submission",
        True,
        None,
        False,
    ),
    "running, its pid alive": (facts(RUNNING, submitted(), Probes("running")), "running", "runner pid 7 on h", True, None, False),
    "running elsewhere, nobody to ask": (
        facts(RUNNING, submitted(), Probes("unknown")),
        "running",
        "(liveness unknown)",
        True,
        None,
        False,
    ),
    "runner gone, requeued": (
        facts(RUNNING, submitted(), Probes("ended", "pending")),
        "queued",
        "runner gone; submission 1 is pending again",
        True,
        None,
        False,
    ),
    "runner lost": (LOST, "preempted", "runner pid 7 on h died without recording an exit", True, "node_fail", True),
    "runner lost, killed for memory": (
        replace(LOST, probes=Probes("ended", "ended", oom=True)),
        "preempted",
        "died without recording",
        True,
        "oom",
        True,
    ),
    "runner lost, scheduler says TIMEOUT": (
        replace(LOST, probes=Probes("ended", "ended", "TIMEOUT")),
        "preempted",
        "died without recording",
        True,
        "timeout",
        True,
    ),
    "runner lost, job cancelled": (
        replace(LOST, probes=Probes("ended", "ended", "CANCELLED by 0")),
        "cancelled",
        "job 42 was cancelled (CANCELLED by 0); not resubmitted",
        False,
        None,
        False,
    ),
    "completed": (
        facts(runner("completed"), submitted() + ran("completed")),
        "completed",
        "the runner reported completion",
        True,
        None,
        False,
    ),
    "preempted": (
        facts(runner("preempted", reason="SIGUSR1"), submitted("local") + ran("preempted", ckpt="2:0:k"), Probes(scheduler="ended")),
        "preempted",
        "SIGUSR1",
        True,
        "preempted",
        False,
    ),
    "preempted, local liveness unknown": (
        facts(runner("preempted"), submitted("local") + ran("preempted"), Probes(scheduler="unknown")),
        "preempted",
        "stopped on a signal",
        True,
        "preempted",
        False,
    ),
    "preempted, the scheduler reruns it": (
        facts(runner("preempted"), submitted() + ran("preempted"), Probes(scheduler="unknown")),
        "queued",
        "stopped on a signal; submission 1 is unknown: its scheduler reruns it",
        True,
        "preempted",
        False,
    ),
    "failed, scheduler says OUT_OF_MEMORY": (
        facts(runner("failed", reason="killed"), submitted() + ran("failed"), Probes(scheduler="ended", final="OUT_OF_MEMORY")),
        "failed",
        "killed",
        True,
        "oom",
        False,
    ),
    "bad input": (
        facts(runner("bad_input", reason="ckpt_x: typo"), ran("bad_input")),
        "failed",
        "bad input (exit 2), never retried: ckpt_x: typo",
        False,
        "bad_input",
        False,
    ),
    "pruned by its runner's state": (facts(runner("pruned")), "pruned", "pruned by a search", False, None, False),
    "state.json malformed": (
        facts(state_problem="state.json: status: unknown value 'x'"),
        "failed",
        "unknown value 'x'; reported, not resubmitted",
        False,
        None,
        False,
    ),
    "preempted, no checkpoint verifies": (
        facts(runner("preempted"), ran("preempted"), ckpt=CkptFacts(problem="epochs/002: bad CRC")),
        "corrupt",
        "no checkpoint verifies: epochs/002: bad CRC",
        True,
        "preempted",
        False,
    ),
    "preempted, pruned by the search": (
        facts(runner("preempted"), ran("preempted"), pruned=PruneRecord("worse than the median", 2, "")),
        "pruned",
        "pruned by the search: worse than the median",
        False,
        "preempted",
        False,
    ),
    "running, pruned but not stopped yet": (
        facts(RUNNING, probes=Probes("running"), pruned=PruneRecord("r", 2, "")),
        "running",
        "runner pid 7",
        True,
        None,
        False,
    ),
}


@pytest.mark.parametrize("case", TABLE)
def test_classify(case: str) -> None:
    given, state, reason, retryable, cause, lost = TABLE[case]
    verdict = rules.classify(given)
    assert (verdict.state, verdict.retryable, verdict.cause, verdict.runner_lost) == (state, retryable, cause, lost)
    assert reason in verdict.reason


def test_a_submission_that_never_started_its_runner_counts_as_a_failure() -> None:
    assert rules.classify(facts(events=submitted(), probes=Probes(scheduler="ended"))).failed_submission
    assert not rules.classify(facts(events=submitted(), probes=Probes(scheduler="pending"))).failed_submission


def test_a_retry_request_makes_a_failure_retryable_until_a_submission_acts_on_it() -> None:
    bad = [*ran("bad_input"), event("retry_requested", time="2026-01-01T00:00:00")]
    verdict = rules.classify(facts(runner("bad_input", reason="typo"), bad))
    assert verdict.state == "failed" and verdict.retryable and verdict.retry_requested == "2026-01-01T00:00:00"
    assert verdict.causes == {}  # the budgets start again
    acted = rules.classify(facts(runner("bad_input", reason="typo"), bad + submitted(generation=2)))
    assert acted.retry_requested is None
    completed = rules.classify(facts(runner("completed"), ran("completed") + bad[-1:]))
    assert completed.retry_requested is None  # only a preempted or failed task keeps it


def test_the_key_of_a_lost_command_is_its_files_fingerprint_or_unknown() -> None:
    command = replace(LOST, spec=COMMAND, ckpt=CkptFacts())
    assert rules.classify(replace(command, probes=Probes("ended", "ended", progress="files:abc"))).ckpt_key == "files:abc"
    unreadable = replace(command, ckpt=CkptFacts(unreadable="EIO"), probes=Probes("ended", "ended", progress="files:abc"))
    assert rules.classify(unreadable).ckpt_key == UNKNOWN
    assert rules.classify(LOST).ckpt_key == CKPT.key  # an entry: its checkpoint's key


def test_lost_runners_without_progress_stall() -> None:
    lost_twice = submitted() + ran("preempted", ckpt="2:0:k") + [event("runner_lost", cause="node_fail", ckpt="2:0:k")]
    verdict = rules.classify(replace(LOST, journal=summarize([*lost_twice, event("start", attempt=2)])))
    assert verdict.causes == {"preempted": 1, "node_fail": 2} and verdict.stalled == 2


def test_summarize_counts_since_the_last_retry_request() -> None:
    journal = summarize(
        submitted(generation=1)
        + submitted(generation=2)  # generation 1's runner never started: a failure
        + [event("start", attempt=1, generation=2), event("exit", status="failed", exit_code=1, host="n1")]
        + [event("submit_intent", generation=3), event("submit_failed", generation=3)]
    )
    assert (journal.attempts, journal.failures, journal.preemptions) == (1, 3, 0)
    assert (journal.last_exit, journal.exit_host, journal.generation) == (1, "n1", 3)
    assert journal.latest is not None and journal.latest.outcome == "submit_failed"
    reset = summarize([*submitted(), *ran("failed"), event("retry_requested", time="T")])
    assert (reset.failures, reset.retry_requested) == (0, "T")
    assert summarize([]) == JournalFacts()


# facts -> the questions asked: runner pid, scheduler liveness, final state, OOM record, files
ASKS: dict[str, tuple[TaskFacts, tuple[bool, bool, bool, bool, bool]]] = {
    "completed": (facts(runner("completed"), submitted() + ran("completed")), (False, False, False, False, False)),
    "intent without outcome": (facts(events=submitted()[:1]), (False, False, False, False, False)),
    "submitted, no state": (facts(events=submitted()), (False, True, False, False, False)),
    "running, pid alive": (facts(RUNNING, submitted(), Probes("running")), (True, False, False, False, False)),
    "running, pid dead, no scheduler's word": (facts(RUNNING, submitted(), Probes("ended")), (True, True, True, True, False)),
    "running, pid dead, requeued": (facts(RUNNING, submitted(), Probes("ended", "pending")), (True, True, False, False, False)),
    "lost": (LOST, (True, True, True, True, False)),
    "lost on another host": (replace(LOST, state=replace(RUNNING, host="elsewhere")), (True, True, True, False, False)),
    "lost, TIMEOUT": (replace(LOST, probes=Probes("ended", "ended", "TIMEOUT")), (True, True, True, False, False)),
    "lost command": (replace(LOST, spec=COMMAND, ckpt=CkptFacts()), (True, True, True, True, True)),
    "preempted": (facts(runner("preempted"), submitted() + ran("preempted")), (False, True, True, False, False)),
    "preempted, requeued": (
        facts(runner("preempted"), submitted() + ran("preempted"), Probes(scheduler="pending")),
        (False, True, False, False, False),
    ),
}


@pytest.mark.parametrize("case", ASKS)
def test_only_the_questions_the_files_leave_open_are_asked(case: str) -> None:
    given, expected = ASKS[case]
    asked = (
        rules.asks_runner(given),
        rules.asks_scheduler(given),
        rules.asks_final_state(given),
        rules.asks_oom(given, "h"),
        rules.asks_progress(given),
    )
    assert asked == expected


def test_a_coding_error_in_classification_is_raised_not_made_a_task_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only record and checkpoint errors (and unreadable files) become a task's state; a bug does
    not turn into a "failed, not retryable" task.  The bug is injected: a reader that raises TypeError."""
    task = create_task(tmp_path, {"epochs": 1}, entry="toy:train")
    assert classify(task, {}).state == "new"

    def broken(_root: Path, _newest: object = None) -> str | None:
        raise TypeError("a coding error")

    monkeypatch.setattr(states, "describe_local_tier", broken)
    with pytest.raises(TypeError, match="a coding error"):
        classify(task, {})
