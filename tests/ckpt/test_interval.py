"""The checkpoint interval from an overhead target (`candle_restart.ckpt.interval`), against a table of costs."""

from __future__ import annotations

import pytest

from candle_restart.ckpt.interval import MAXIMUM, choose_interval, describe, overhead

# blocked s per checkpoint, s per batch, target, debt s, minimum -> batches between checkpoints
TABLE = [
    (1.0, 0.1, 0.02, 0.0, 1, 490),  # 1 s checkpoints, 0.1 s batches, 2 %: 49 s of work per checkpoint
    (0.5, 0.1, 0.02, 0.0, 1, 245),
    (1.0, 0.1, 0.10, 0.0, 1, 90),  # a looser target: more often
    (10.0, 2.0, 0.035, 0.0, 1, 138),  # CheckFreq's 3.5 %: 10*0.965/0.07 = 137.86, rounded up
    (0.0, 0.1, 0.02, 0.0, 1, 1),  # free checkpoints: every batch
    (0.0, 0.1, 0.02, 0.0, 20, 20),  # ... but never more often than the minimum
    (0.001, 0.1, 0.5, 0.0, 5, 5),  # cheap: the minimum (ckpt_save_batches) rules
    (1.0, 0.1, 0.02, 2.0, 1, 1490),  # 2 s owed (an expensive first checkpoint): the next waits longer
    (1.0, 0.1, 0.02, -60.0, 1, 1),  # a minute under budget: checkpoint at once
    (1.0, 0.0, 0.02, 0.0, 1, MAXIMUM),  # no batch measured yet: as rarely as allowed
    (1e6, 1e-6, 0.01, 0.0, 1, MAXIMUM),  # clamped to the maximum
]


@pytest.mark.parametrize("blocked, per_batch, target, debt, minimum, expected", TABLE)
def test_interval_table(
    blocked: float, per_batch: float, target: float, debt: float, minimum: int, expected: int
) -> None:
    n = choose_interval(blocked, per_batch, target, debt, minimum=minimum)
    assert n == expected
    if debt == 0.0 and per_batch > 0 and minimum <= n < MAXIMUM:
        assert overhead(blocked, per_batch, n) <= target + 1e-12  # the chosen interval meets the target
        if n > minimum:
            assert overhead(blocked, per_batch, n - 1) > target  # ... and is the most frequent that does


def test_debt_is_paid_back_by_the_next_interval() -> None:
    """After one expensive checkpoint, the next interval brings the whole run back to the target."""
    target, per_batch, blocked = 0.05, 0.1, 0.5
    elapsed, total_blocked = 1.0 + 3.0, 3.0  # a 3 s first checkpoint after 1 s of training
    debt = total_blocked - target * elapsed
    n = choose_interval(blocked, per_batch, target, debt)
    elapsed += n * per_batch + blocked
    total_blocked += blocked
    assert total_blocked / elapsed <= target + 1e-9
    assert (total_blocked) / (elapsed - per_batch) > target  # one batch earlier would not have been


@pytest.mark.parametrize(
    "args",
    [(1.0, 0.1, 0.0), (1.0, 0.1, 1.0), (-1.0, 0.1, 0.02), (1.0, float("inf"), 0.02)],
)
def test_bad_inputs_raise(args: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError):
        choose_interval(*args)


def test_the_log_line_says_what_and_why() -> None:
    line = describe(490, 1.0, 0.1, 0.02)
    assert line.startswith("interval: checkpoint every 490 batches (blocked 1.000 s per checkpoint")
    assert "0.1000 s per batch" in line and "target 2.0%" in line and "2.0% at this interval" in line
