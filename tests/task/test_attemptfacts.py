"""What the runner records of an attempt besides its outcome (`candle_restart.task.attemptfacts`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from candle_restart.records.epochs import EpochEvent, append_event
from candle_restart.task.attemptfacts import epoch_seconds, scheduler_facts

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=timezone.utc)


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def test_epoch_seconds_is_the_median_gap_of_this_attempts_epochs(tmp_path: Path) -> None:
    for kind, at in [("train_start", -50), ("epoch", -40), ("epoch", -10)]:  # an earlier attempt's
        append_event(tmp_path, EpochEvent(kind, _at(at), epoch=1 if kind == "epoch" else None))  # type: ignore[arg-type]
    append_event(tmp_path, EpochEvent("train_start", _at(2)))
    for n, at in enumerate([5, 8, 20, 23], 1):  # gaps 3, 3, 12, 3 from the first step
        append_event(tmp_path, EpochEvent("epoch", _at(at), epoch=n))
    assert epoch_seconds(tmp_path, _at(0)) == 3.0
    assert epoch_seconds(tmp_path, _at(100)) is None  # nothing since: no figure, never zero
    assert epoch_seconds(tmp_path / "missing", _at(0)) is None
    (tmp_path / "events.jsonl").write_text("not json\n")
    assert epoch_seconds(tmp_path, _at(0)) is None  # a record that does not read gives no figure


def test_scheduler_facts_from_squeue_and_none_outside_slurm() -> None:
    """``squeue``'s answer is given as text here (the unit tier starts no process); the Slurm tests
    read the real one (tests/slurm/test_bad_hosts.py)."""
    asked: list[list[str]] = []

    def squeue(cmd: list[str]) -> str:
        asked.append(cmd)
        return "2026-12-06T12:00:00|2026-12-06T12:00:42|2026-12-06T12:01:42\n"

    facts = scheduler_facts({"SLURM_JOB_ID": "17", "SLURMD_NODENAME": "n1"}, squeue)
    assert asked == [["squeue", "-h", "-j", "17", "-o", "%V|%S|%e"]]
    assert facts["node"] == "n1" and facts["queue_seconds"] == 42.0
    end = datetime.fromisoformat(str(facts["allocation_end"]))
    assert end == datetime.fromisoformat("2026-12-06T12:01:42").astimezone(timezone.utc)
    assert scheduler_facts({}, squeue) == {} and len(asked) == 1  # not under Slurm: nothing asked
    assert scheduler_facts({"SLURM_JOB_ID": "17"}, lambda _c: None) == {}  # squeue did not answer
    unknown = scheduler_facts({"SLURM_JOB_ID": "17"}, lambda _c: "2026-12-06T12:00:00|N/A|Unknown\n")
    assert unknown == {}  # unknown, never zero
    unlimited = scheduler_facts(
        {"SLURM_JOB_ID": "17"}, lambda _c: "2026-12-06T12:00:00|2026-12-06T12:00:00|2027-12-06T12:00:00\n"
    )
    assert unlimited == {"queue_seconds": 0.0}  # a partition without a time limit: no allocation end
