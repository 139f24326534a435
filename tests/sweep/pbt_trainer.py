"""A training task for the population-based search's tests: real checkpoints through the core, no TensorFlow.

The "model" is the list of learning rates it was trained with, one per epoch (JSON), so a member
that started from another's checkpoint carries that member's history.  Its ``val_loss`` at each
epoch end is ``(log10(learning_rate) + 2) ** 2 + 1 / epoch``: a rate near 0.01 is best.
``epoch_seconds`` (default 0) is how long each epoch's work takes (a long training to stop).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from candle_restart.ckpt.preempt import REQUEST, Preempted
from tests.helpers import BytesCkpt, BytesModel


def loss(learning_rate: float, epoch: int) -> float:
    return (math.log10(learning_rate) + 2) ** 2 + 1 / epoch


def run(params: dict[str, Any]) -> None:
    ckpt = BytesCkpt(params)
    model = BytesModel(b"[]")
    J = ckpt.restart(model)
    start = J["epoch"] if J else 0
    rate = float(params["learning_rate"])
    for epoch in range(start, int(params["epochs"])):
        time.sleep(float(params.get("epoch_seconds", 0)))  # the epoch's work
        model.payload = json.dumps([*json.loads(model.payload), rate]).encode()
        value = loss(rate, epoch + 1)
        ckpt.epoch_logs = {"val_loss": value}
        ckpt.ckpt_epoch(epoch, "-", value)
        if REQUEST.requested:
            raise Preempted(f"{REQUEST.name} received; stopped after epoch {epoch + 1}")
    ckpt.report_final()
