"""Entry point for a test: the example benchmark, whose training blocks forever inside a batch of
epoch 2 on the task's first attempt (a data loader or a collective that never returns)."""

from __future__ import annotations

import os
import threading
from typing import Any

from candle_restart.examples import regression
from candle_restart.keras import CandleCkptKeras
from candle_restart.runtime.envvars import ATTEMPT_ENV


class HangInBatch(CandleCkptKeras):
    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if os.environ.get(ATTEMPT_ENV) == "1" and self._epoch_index == 1 and batch == 2:
            threading.Event().wait()  # forever; the preemption signal only sets a flag
        super().on_train_batch_end(batch, logs)


def run(params: dict[str, Any]) -> dict[str, Any]:
    return regression.run(params, ckpt_class=HangInBatch)
