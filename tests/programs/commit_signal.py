"""Entry point for a test: the example benchmark, but SIGTERM lands in the middle of epoch 2's commit.

The signal is sent by the process to itself from inside ``write_model_backend``
(after the model file, before the training state), so it arrives while the
commit protocol is running: the commit must finish whole, then training stops.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from candle_restart.examples import regression
from candle_restart.keras import CandleCkptKeras


class SignalInCommit(CandleCkptKeras):
    def write_model_backend(self, model: Any, epoch: int) -> None:
        model.save(self.model_file)
        if epoch == 2 and self.saving_position is None:
            os.kill(os.getpid(), signal.SIGTERM)
        super().write_model_backend(model, epoch)


def run(params: dict[str, Any]) -> dict[str, Any]:
    return regression.run(params, ckpt_class=SignalInCommit)
