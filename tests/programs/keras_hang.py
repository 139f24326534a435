"""Entry point for a test: the example benchmark, whose training blocks forever inside a batch of
epoch 2 on the task's first attempt (a data loader or a collective that never returns).

Before it blocks, that batch keeps beating "step" until two step beats in a row have been written
(the heartbeat writes one at most every `BEAT_SECONDS`, the runner polls faster): the runner has
then timed a gap between two steps of a warm training, so its limit is k x that gap plus the
grace, on a fast machine as on a slow one (an epoch shorter than a poll would otherwise leave it
with no step gap seen, and the test waiting out ``ckpt_hang_first``)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from candle_restart.examples import regression
from candle_restart.keras import CandleCkptKeras
from candle_restart.records.heartbeat import Beat
from candle_restart.runtime.envvars import ATTEMPT_ENV, HEARTBEAT_ENV
from candle_restart.runtime.heartbeat import BEAT_SECONDS, HEARTBEAT


def _beat_on_disk() -> Beat | None:
    try:
        return Beat.from_bytes(Path(os.environ[HEARTBEAT_ENV]).read_bytes())
    except (KeyError, OSError):
        return None


def _beat_steps_until_two_in_a_row(deadline: float) -> None:
    """Beat "step" until two consecutive writes of the file are warm step beats (or ``deadline``)."""
    first: Beat | None = None
    while time.monotonic() < deadline:
        HEARTBEAT.beat("step")
        beat = _beat_on_disk()
        if beat is not None and beat.phase == "step" and beat.warm:
            if first is None or beat.n > first.n + 1:
                first = beat
            elif beat.n == first.n + 1:
                return
        time.sleep(BEAT_SECONDS / 20)  # a step of this batch: the beats are what is waited for


class HangInBatch(CandleCkptKeras):
    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if os.environ.get(ATTEMPT_ENV) == "1" and self._epoch_index == 1 and batch == 2:
            _beat_steps_until_two_in_a_row(time.monotonic() + 20 * BEAT_SECONDS)
            threading.Event().wait()  # forever; the preemption signal only sets a flag
        super().on_train_batch_end(batch, logs)


def run(params: dict[str, Any]) -> dict[str, Any]:
    return regression.run(params, ckpt_class=HangInBatch)
