"""The allocation's end and the halt rule (`candle_restart.runtime.deadline`), against tables.

The scheduler's answers are given as the text ``squeue``/``scontrol`` print;
the real query runs in the Slurm test (tests/slurm/test_slurm_backend.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from candle_restart.ckpt import ParamError, parse_params
from candle_restart.runtime.deadline import (
    End,
    find_end,
    margin,
    parse_duration,
    parse_time,
    should_halt,
    slurm_end,
)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90", 90.0),
        (45, 45.0),
        ("1.5", 1.5),
        ("01:30", 90.0),
        ("1:00:00", 3600.0),
        ("00:01:00", 60.0),
        ("2-12", 2 * 86400 + 12 * 3600),
        ("2-12:30", 2 * 86400 + 12 * 3600 + 30 * 60),
        ("1-0:0:5", 86405.0),
    ],
)
def test_walltime_spellings(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["x", "1:2:3:4", "-5", "1h", "", "1-", True, -1, float("inf"), 10**400, "9" * 400]
)
def test_bad_walltime_is_one_line(text: object) -> None:
    with pytest.raises(ValueError, match="seconds or HH:MM:SS"):
        parse_duration(text)  # type: ignore[arg-type]


# now, end, slowest commit, factor, halt seconds, next step -> halt?
HALT_TABLE = [
    (1000.0, None, 5.0, 3.0, 30.0, 0.0, False),  # no end known: never
    (1000.0, 1100.0, 5.0, 3.0, 30.0, 0.0, False),  # 100 s left > 45 s margin
    (1000.0, 1045.0, 5.0, 3.0, 30.0, 0.0, True),  # exactly the margin: last chance
    (1000.0, 1050.0, 5.0, 3.0, 30.0, 6.0, True),  # 50 s left, but the next check is 6 s away
    (1000.0, 1050.0, 5.0, 3.0, 30.0, 4.0, False),
    (1000.0, 1031.0, 0.0, 3.0, 30.0, 0.0, False),  # no commit measured yet: halt seconds alone
    (1000.0, 1030.0, 0.0, 3.0, 30.0, 0.0, True),
    (1000.0, 990.0, 0.0, 3.0, 0.0, 0.0, True),  # already past the end
    (1000.0, 1190.0, 60.0, 3.0, 10.0, 1.0, True),  # a slow filesystem: 191 s margin
]


@pytest.mark.parametrize("now, end, slowest, factor, halt, step, expected", HALT_TABLE)
def test_should_halt_table(
    now: float, end: float | None, slowest: float, factor: float, halt: float, step: float, expected: bool
) -> None:
    assert should_halt(now, end, slowest, factor, halt, step) is expected


def test_margin_is_slowest_commit_times_factor_plus_halt_seconds_plus_step() -> None:
    assert margin(5.0, 3.0, 30.0) == 45.0
    assert margin(5.0, 3.0, 30.0, 2.5) == 47.5


def test_slurm_end_time_from_the_environment_needs_no_query() -> None:
    def run(argv: list[str]) -> str | None:
        raise AssertionError(f"no query expected, ran {argv}")

    assert slurm_end({"SLURM_JOB_END_TIME": "1800000000", "SLURM_JOB_ID": "7"}, run) == End(
        1800000000.0, "SLURM_JOB_END_TIME"
    )


def test_slurm_end_from_squeue_then_scontrol() -> None:
    calls: list[list[str]] = []
    local = datetime(2026, 11, 30, 16, 52, 29).timestamp()

    def squeue_answers(argv: list[str]) -> str | None:
        calls.append(argv)
        return "2026-11-30T16:52:29\n"

    assert slurm_end({"SLURM_JOB_ID": "34"}, squeue_answers) == End(local, "squeue")
    assert calls == [["squeue", "-h", "-j", "34", "-o", "%e"]]

    def only_scontrol(argv: list[str]) -> str | None:
        if argv[0] == "squeue":
            return None
        return "   StartTime=2026-11-30T16:51:29 EndTime=2026-11-30T16:52:29 Deadline=N/A\n"

    assert slurm_end({"SLURM_JOB_ID": "34"}, only_scontrol) == End(local, "scontrol show job")


A_YEAR_ON = (datetime.now() + timedelta(days=365)).isoformat(timespec="seconds")


@pytest.mark.parametrize("answer", ["Unknown\n", "N/A\n", None, "", A_YEAR_ON])
def test_slurm_job_without_a_limit_has_no_end(answer: str | None) -> None:
    assert slurm_end({"SLURM_JOB_ID": "34"}, lambda argv: answer) is None


def test_outside_any_scheduler_only_the_users_settings_count() -> None:
    assert find_end({}, run=lambda argv: None) is None
    assert find_end({}, walltime=600.0, start=1000.0) == End(1600.0, "ckpt_walltime")
    assert find_end({}, halt_at=1500.0, walltime=600.0, start=1000.0) == End(1500.0, "ckpt_halt_at")
    assert find_end({"PBS_WALLTIME": "00:05:00"}, start=1000.0) == End(1300.0, "PBS_WALLTIME")


def test_the_earliest_known_end_wins() -> None:
    env = {"SLURM_JOB_END_TIME": "2000", "PBS_WALLTIME": "3000"}
    assert find_end(env, walltime=5000.0, start=0.0) == End(2000.0, "SLURM_JOB_END_TIME")
    assert find_end(env, walltime=1500.0, start=0.0) == End(1500.0, "ckpt_walltime")


def test_gparameters_of_the_halt_and_the_interval() -> None:
    p = parse_params({"epochs": 1})
    assert (p.halt_seconds, p.walltime, p.halt_at, p.save_batches, p.overhead_target) == (
        None,
        None,
        None,
        0,
        0.0,
    )
    p = parse_params(
        {
            "epochs": 1,
            "ckpt_halt_seconds": "10",
            "ckpt_walltime": "01:00:00",
            "ckpt_halt_at": "2026-11-30T18:00:00+00:00",
            "ckpt_save_batches": "50",
            "ckpt_overhead_target": "0.02",
        }
    )
    assert (p.halt_seconds, p.walltime, p.save_batches, p.overhead_target) == (10.0, 3600.0, 50, 0.02)
    assert p.halt_at == parse_time("2026-11-30T18:00:00Z")
    assert parse_params({"epochs": 1, "ckpt_walltime": "none"}).walltime is None


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("ckpt_halt_seconds", -1, "seconds >= 0"),
        ("ckpt_walltime", "soon", "seconds or HH:MM:SS"),
        ("ckpt_halt_at", "tomorrow", "an ISO time"),
        ("ckpt_save_batches", -2, "integer >= 0"),
        ("ckpt_overhead_target", 1.5, "fraction"),
        ("ckpt_overhead_target", "two percent", "a number"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(key: str, value: object, fragment: str) -> None:
    with pytest.raises(ParamError) as err:
        parse_params({"epochs": 1, key: value})
    assert str(err.value).startswith(f"gParameters: {key}: ") and fragment in str(err.value)
    assert "\n" not in str(err.value)
