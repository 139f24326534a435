"""Keep policies against a table of surviving epochs."""

from __future__ import annotations

import pytest

from candle_restart.ckpt import surviving_epochs

TEN = range(1, 11)


@pytest.mark.parametrize(
    "epochs, mode, limit, protect, expected",
    [
        (TEN, "all", 1, (), set(TEN)),
        (TEN, "linear", 3, (), {8, 9, 10}),
        (TEN, "linear", 3, (2,), {2, 8, 9, 10}),
        (TEN, "linear", 1, (), {10}),
        (TEN, "linear", 50, (), set(TEN)),
        (TEN, "exponential", 50, (), {10, 9, 7, 3, 1}),
        (TEN, "exponential", 3, (), {10, 9, 7}),
        (TEN, "exponential", 3, (1,), {1, 10, 9, 7}),
        (range(1, 33), "exponential", 50, (), {32, 31, 29, 25, 17, 1}),
        ([2, 4, 6, 8, 10], "exponential", 50, (), {10, 8, 4, 2}),
        ([], "linear", 3, (), set()),
        ([5], "exponential", 1, (), {5}),
        (TEN, "linear", 2, (42,), {9, 10}),  # protecting an epoch not on disk adds nothing
    ],
)
def test_surviving_epochs(epochs, mode, limit, protect, expected) -> None:  # type: ignore[no-untyped-def]
    assert surviving_epochs(epochs, mode, limit, protect) == expected


def test_newest_always_survives_and_unknown_mode_is_refused() -> None:
    assert 10 in surviving_epochs(TEN, "exponential", 1)
    with pytest.raises(ValueError):
        surviving_epochs(TEN, "fifo", 1)


@pytest.mark.parametrize(
    "mode, limit, expected",
    [
        ("exponential", 5, [49, 57, 61, 63, 64]),
        ("exponential", 50, [1, 33, 49, 57, 61, 63, 64]),
        ("linear", 3, [62, 63, 64]),
    ],
)
def test_policy_is_stable_when_applied_after_every_epoch(mode: str, limit: int, expected: list[int]) -> None:
    """clean() runs after each commit, so the policy must not collapse when applied repeatedly."""
    kept: set[int] = set()
    for epoch in range(1, 65):
        kept = surviving_epochs(kept | {epoch}, mode, limit)
    assert sorted(kept) == expected
