"""`Pacer`'s decisions, step by step on a clock the test advances (its measurements are the clock's).

Real training under it: tests/keras/test_pacing.py; a real walltime: tests/slurm/test_slurm_backend.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from candle_restart.ckpt import parse_params
from candle_restart.ckpt.pacing import Pacer
from candle_restart.runtime.deadline import End
from candle_restart.runtime.preempt import REQUEST, Preempted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


pytestmark = pytest.mark.usefixtures("preemption")  # requests made on purpose: cleared after each test


def _pacer(clock: Clock, end: float | None = None, **params: Any) -> tuple[Pacer, list[str]]:
    lines: list[str] = []
    settings = parse_params({"epochs": 1, **params})
    found = None if end is None else End(end, "ckpt_halt_at")
    pacer = Pacer(settings, lines.append, clock=clock, wall=clock, find=lambda _s: found)
    pacer.start()
    return pacer, lines


def _checkpoint(pacer: Pacer, clock: Clock, blocked: float, commit: float) -> None:
    started = pacer.saving()
    clock.now += blocked
    pacer.saved()
    pacer.committed(started - (commit - blocked))  # the commit finished `commit` s after it began


def test_save_batches_checkpoints_every_n_batches() -> None:
    clock = Clock()
    pacer, _ = _pacer(clock, ckpt_save_batches=3)
    due = []
    for _ in range(7):
        clock.now += 0.1
        due.append(pacer.batch_end())
        if due[-1]:
            _checkpoint(pacer, clock, 0.01, 0.01)
    assert due == [False, False, True, False, False, True, False]


def test_no_interval_keys_means_no_mid_epoch_checkpoints() -> None:
    clock = Clock()
    pacer, _ = _pacer(clock)
    for _ in range(50):
        clock.now += 1.0
        assert not pacer.batch_end()


def test_target_probes_then_chooses_from_the_measured_costs() -> None:
    clock = Clock()
    pacer, lines = _pacer(clock, ckpt_overhead_target=0.1, ckpt_save_batches=4)
    batches = []
    for n in range(1, 400):
        clock.now += 0.1
        if pacer.batch_end():
            batches.append(n)
            _checkpoint(pacer, clock, 1.0, 1.0)  # 1 s blocked per checkpoint, 0.1 s batches
    assert batches[0] == 4  # the probe: after ckpt_save_batches
    # Steady state: 1 s * 0.9 / (0.1 * 0.1 s) = 90 batches; the probe's overrun first stretches one interval.
    gaps = [b - a for a, b in itertools.pairwise(batches)]
    assert gaps[0] == 176 and gaps[1:] == [90] * (len(gaps) - 1) and len(gaps) >= 3  # 0.86 s owed: +86
    assert pacer.overhead() <= 0.1 + 1e-9
    assert "interval: first checkpoint after 4 batches, to measure its cost (target 10.0%)" in lines
    assert any(line.startswith("interval: checkpoint every 90 batches (blocked 1.000 s") for line in lines)


def test_halt_margin_grows_with_the_slowest_commit() -> None:
    clock = Clock()
    pacer, lines = _pacer(clock, end=1100.0, ckpt_halt_seconds=10)
    clock.now += 1.0
    pacer.batch_end()
    _checkpoint(pacer, clock, 0.5, 20.0)  # a 20 s commit: the margin is now 20 x 3 + 10 + the step
    while not REQUEST.requested:
        clock.now += 1.0
        pacer.batch_end()
    left = 1100.0 - clock.now
    assert 70.0 < left <= 71.0  # halted at the first check within 60 + 10 + 1 s of the end
    assert REQUEST.name == "walltime" and REQUEST.cause == "timeout"
    assert Preempted("stopped").cause == "timeout"
    assert any(
        line.startswith("walltime: halting now,") and "slowest commit 20.000 s x 3 + 10 s" in line
        for line in lines
    )
    assert lines[0].startswith("walltime: allocation ends at ") and "(from ckpt_halt_at)" in lines[0]


def test_a_signal_first_stays_a_preemption() -> None:
    clock = Clock()
    pacer, _ = _pacer(clock, end=1010.0, ckpt_halt_seconds=30)
    REQUEST.request(10)
    pacer.batch_end()
    assert REQUEST.cause == "preempted" and Preempted("x").cause == "preempted"


def test_no_halt_when_checkpoints_are_disabled() -> None:
    clock = Clock()
    pacer, lines = _pacer(clock, end=1010.0, ckpt_save_interval=0)
    pacer.batch_end()
    assert not REQUEST.requested
    assert "checkpoints are disabled, so no halt before it" in lines[0]


def test_without_ckpt_halt_seconds_the_margin_is_measured_plus_a_small_floor() -> None:
    # A 0.03 s commit and 0.4 s steps (the figures): the halt comes 0.09 + 5 + 0.4 s
    # before the end, not 30 s and more.
    clock = Clock()
    pacer, lines = _pacer(clock, end=1100.0)
    clock.now += 0.4
    pacer.batch_end()
    _checkpoint(pacer, clock, 0.01, 0.03)
    while not REQUEST.requested:
        clock.now += 0.4
        pacer.batch_end()
    left = 1100.0 - clock.now
    assert 5.09 < left <= 5.09 + 0.4 + 0.41  # within one step of the measured margin
    assert any("slowest commit 0.030 s x 3 + 5 s + longest step" in line for line in lines)


def test_the_tasks_measured_exit_widens_the_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANDLE_RESTART_EXIT_SECONDS", "3")  # the runner measured a 3 s exit before
    clock = Clock()
    pacer, lines = _pacer(clock, end=1100.0)
    while not REQUEST.requested:
        clock.now += 0.5
        pacer.batch_end()
    assert 9.0 < 1100.0 - clock.now <= 9.0 + 0.5 + 0.5  # 3 x 3 s instead of the 5 s floor
    assert any("+ 9 s + longest step" in line for line in lines)
    monkeypatch.setenv("CANDLE_RESTART_EXIT_SECONDS", "3")
    REQUEST.clear()
    given, _ = _pacer(Clock(), end=1100.0, ckpt_halt_seconds=1)  # given: an override
    assert given._fixed() == 1.0
