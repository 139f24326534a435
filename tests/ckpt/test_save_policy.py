"""`SavePolicy`: whether to checkpoint now, as tables of settings and facts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from candle_restart.ckpt.params import CkptParams, parse_params
from candle_restart.ckpt.policy import EpochVerdict, SavePolicy

BASE = parse_params({"epochs": 10, "ckpt_directory": "unused"})


def _settings(**changes: object) -> CkptParams:
    return replace(BASE, **changes)  # type: ignore[arg-type]


V = EpochVerdict


@pytest.mark.parametrize(
    ("interval", "skip", "epochs", "epoch", "improved", "verdict"),
    [
        (0, 0, 10, 5, True, V.DISABLED),  # checkpoints off: not even a best
        (1, 4, 10, 3, True, V.SKIPPED),  # before ckpt_skip_epochs: not even a best
        (1, 4, 10, 4, False, V.INTERVAL),  # the skip ends at ckpt_skip_epochs itself
        (3, 0, 10, 2, True, V.BEST),
        (3, 0, 10, 10, False, V.FINAL),
        (3, 0, 10, 10, True, V.BEST),  # a best is said first
        (3, 0, 10, 6, False, V.INTERVAL),
        (3, 0, 10, 7, False, V.NOT_DUE),
        (3, 0, 0, 7, False, V.NOT_DUE),  # epochs unknown (0): no final epoch
    ],
)
def test_epoch_end(interval: int, skip: int, epochs: int, epoch: int, improved: bool, verdict: V) -> None:
    asked: list[int] = []

    def improves() -> bool:
        asked.append(epoch)
        return improved

    s = _settings(save_interval=interval, skip_epochs=skip, epochs=epochs)
    got = SavePolicy.epoch_end(s, epoch, improves)
    assert got is verdict
    assert got.save == (verdict in (V.BEST, V.FINAL, V.INTERVAL))
    assert asked == ([] if verdict in (V.DISABLED, V.SKIPPED) else [epoch])  # the best is checked only when it counts


@pytest.mark.parametrize(
    ("settings", "batches", "seconds", "target", "can_save", "due"),
    [
        ({}, 100, 1e6, 1, True, False),  # no mid-epoch checkpoints by default
        ({"save_batches": 5}, 4, 0.0, 1, True, False),
        ({"save_batches": 5}, 5, 0.0, 1, True, True),
        ({"save_seconds": 10.0}, 1, 9.9, 1, True, False),
        ({"save_seconds": 10.0}, 1, 10.0, 1, True, True),
        ({"save_batches": 5, "save_seconds": 10.0}, 1, 10.0, 1, True, True),  # either
        ({"save_batches": 5}, 5, 0.0, 1, False, False),  # the caller cannot save here
        ({"save_batches": 5, "save_interval": 0}, 5, 0.0, 1, True, False),  # checkpoints off
        ({"overhead_target": 0.05, "save_batches": 2}, 3, 0.0, 4, True, False),  # the target decides alone
        ({"overhead_target": 0.05}, 4, 0.0, 4, True, True),
    ],
)
def test_batch_end(
    settings: dict[str, object], batches: int, seconds: float, target: int, can_save: bool, due: bool
) -> None:
    s = _settings(**settings)
    got = SavePolicy.batch_end(
        s, batches_since=batches, seconds_since=seconds, target_interval=lambda: target, can_save=can_save
    )
    assert got is due


@pytest.mark.parametrize(
    ("interval", "saved", "save"), [(1, False, True), (1, True, False), (0, False, False), (0, True, False)]
)
def test_before_stop(interval: int, saved: bool, save: bool) -> None:
    assert SavePolicy.before_stop(_settings(save_interval=interval), saved) is save
