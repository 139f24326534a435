"""`RequestAt`: a preemption request at a chosen batch of a Keras training, for in-process tests."""

from __future__ import annotations

from typing import Any

import keras

from candle_restart.runtime.preempt import REQUEST


class RequestAt(keras.callbacks.Callback):
    """Records a preemption request (what the SIGUSR1 handler does) as batch ``batch`` of ``epoch`` begins."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.at, self.epoch = (epoch, batch), 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if (self.epoch, batch) == self.at:
            REQUEST.request(10)
