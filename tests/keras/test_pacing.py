"""Real Keras training under `candle_restart.ckpt.pacing`: the overhead target and the halt before the walltime.

The model is made large for its work (two 1024-wide layers on 32 inputs, batches of 8) so a
checkpoint blocks training for several batches' time: checkpointing every batch would cost most of
the run.  All figures compared are the callback's own measurements, never wall-clock constants.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from candle_restart.ckpt.interval import overhead
from candle_restart.keras import CandleCkptKeras
from candle_restart.runtime.preempt import Preempted, PreemptionRequest

BATCHES, BATCH, WIDTH = 300, 8, 1024
TARGET = 0.05
# The measured overhead may exceed the target by this fraction of it: the costs are measured on a
# shared machine and the interval is chosen from their running mean.
TOLERANCE = 0.2


def _model() -> Any:
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(WIDTH, activation="relu"),
            keras.layers.Dense(WIDTH),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def _data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(BATCHES * BATCH, 32)).astype("float32")
    return x, x[:, :1]


class _AtBatchEnds(keras.callbacks.Callback):
    """Reads the checkpoint callback's own measurements after each batch end (it runs after it)."""

    def __init__(self, ckpt: CandleCkptKeras) -> None:
        super().__init__()
        self.ckpt = ckpt
        self.seen: list[tuple[int, int, int | None, float]] = []  # batch, checkpoints, interval, overhead
        self.blocked: list[tuple[float, float, float]] = []  # blocked in all, by the last checkpoint; elapsed

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        pacer = self.ckpt.pacer
        self.seen.append((batch, pacer.checkpoints, pacer.interval, pacer.overhead()))
        self.blocked.append((pacer.blocked_total, pacer.blocked_last or 0.0, pacer.elapsed()))


def test_overhead_target_keeps_expensive_checkpoints_within_it(tmp_path: Path) -> None:
    params = {
        "epochs": 1,
        "ckpt_directory": str(tmp_path / "ckpts"),
        "ckpt_save_best": False,
        "ckpt_overhead_target": TARGET,
        "ckpt_keep_limit": 2,
    }
    ckpt = CandleCkptKeras(params, verbose=False)
    probe = _AtBatchEnds(ckpt)
    x, y = _data()
    _model().fit(x, y, batch_size=BATCH, epochs=1, callbacks=[ckpt, probe], verbose=0)

    pacer = ckpt.pacer
    _, mid_epoch, _, measured = probe.seen[-1]  # the last batch end: every checkpoint the target governed
    blocked, per_batch = pacer.blocked_total / pacer.checkpoints, pacer.per_batch()
    # Checkpoints are expensive here: one every batch would block training far beyond the target ...
    assert overhead(blocked, per_batch, 1) > 4 * TARGET, (blocked, per_batch)
    # ... yet the callback kept checkpointing inside the epoch, each one where the interval it chose
    # from its measurements put it, until the next one fell past the epoch's end; and within the target.
    # (How many fit in the epoch depends on this machine's load: the positions do not.)
    counts = [0] + [n for _, n, _, _ in probe.seen]
    taken = [(b, interval) for i, (b, n, interval, _) in enumerate(probe.seen) if n > counts[i]]
    assert taken and taken[0][0] == 9 and len(taken) == mid_epoch, probe.seen  # the first after 10 batches
    for (at, every), (then, _) in itertools.pairwise(taken):
        assert every is not None and then - at == every, (taken, probe.seen)
    last, every = taken[-1]
    # The next was due at the epoch's last batch or after it: a checkpoint due at the last batch is
    # the epoch end's, which on_epoch_end takes with the whole epoch.
    assert every is not None and last + every >= BATCHES - 1, taken
    # Within the target, but for what the last checkpoint cost beyond the mean of those before it:
    # a stall no interval chosen before it could pay back inside this epoch.
    total, last_blocked, elapsed = probe.blocked[-1]
    mean_before = (total - last_blocked) / (mid_epoch - 1) if mid_epoch > 1 else last_blocked
    surprise = max(last_blocked - mean_before, 0.0)
    assert (total - surprise) / elapsed <= TARGET * (1 + TOLERANCE), (measured, surprise, pacer.interval)
    assert pacer.interval is not None and pacer.interval > 1
    log = (tmp_path / "ckpts" / "ckpt.log").read_text()
    assert "interval: first checkpoint after 10 batches, to measure its cost (target 5.0%)" in log
    assert "interval: checkpoint every " in log and "s per checkpoint" in log
    # The closing line reports the whole run, the final checkpoint's commit (not governed) included.
    assert "checkpoint(s) blocked training" in log


def test_halt_before_the_walltime_commits_inside_the_epoch_and_exits_75_as_timeout(
    tmp_path: Path, preemption: PreemptionRequest
) -> None:
    # The allocation "ends" in 10 minutes and the margin asked for is 20: the first batch end halts.
    halt_at = (datetime.now().astimezone() + timedelta(minutes=10)).isoformat()
    params = {
        "epochs": 1,
        "ckpt_directory": str(tmp_path / "ckpts"),
        "ckpt_save_best": False,
        "ckpt_halt_at": halt_at,
        "ckpt_halt_seconds": 1200,
    }
    ckpt = CandleCkptKeras(params, verbose=False)
    x, y = _data()
    with pytest.raises(Preempted) as stopped:
        _model().fit(x, y, batch_size=BATCH, epochs=1, callbacks=[ckpt], verbose=0)
    assert stopped.value.code == 75 and stopped.value.cause == "timeout"
    assert preemption.name == "walltime" and preemption.count == 0  # no signal was involved
    info = json.loads((tmp_path / "ckpts" / "last" / "ckpt-info.json").read_text())
    assert info["position"] == {"epoch": 1, "batch": 1}  # committed inside the epoch, at the first chance
    log = (tmp_path / "ckpts" / "ckpt.log").read_text()
    assert "(from ckpt_halt_at)" in log and "walltime: halting now" in log
