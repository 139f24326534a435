"""candle_lib's ``CyclicLR`` (``candle/clr_keras_utils.py``), copied for the tests: candle_lib is not
on the package registry.

Faithful to its state and arithmetic (``clr_iterations``, ``trn_iterations``, ``history``; the
triangular, triangular2 and exp_range policies; the learning rate set at train begin and after
every batch).  The one change: candle_lib writes the rate with TensorFlow's Keras 2
``K.set_value(self.model.optimizer.lr, ...)``, which Keras 3 does not have; this copy assigns
``self.model.optimizer.learning_rate``, which is the same variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np


class CyclicLR(keras.callbacks.Callback):
    """Cycles the learning rate between ``base_lr`` and ``max_lr`` every ``2 * step_size`` batches."""

    def __init__(
        self,
        base_lr: float = 0.001,
        max_lr: float = 0.006,
        step_size: float = 2000.0,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
    ) -> None:
        super().__init__()
        if mode not in ["triangular", "triangular2", "exp_range"]:
            raise KeyError("mode must be one of 'triangular', 'triangular2', or 'exp_range'")
        self.base_lr = base_lr
        self.max_lr = max_lr
        self.step_size = step_size
        self.mode = mode
        self.gamma = gamma
        if scale_fn is None:
            if self.mode == "triangular":
                self.scale_fn: Callable[[float], float] = lambda x: 1.0
                self.scale_mode = "cycle"
            elif self.mode == "triangular2":
                self.scale_fn = lambda x: 1 / (2.0 ** (x - 1))
                self.scale_mode = "cycle"
            elif self.mode == "exp_range":
                self.scale_fn = lambda x: gamma**x
                self.scale_mode = "iterations"
        else:
            self.scale_fn = scale_fn
            self.scale_mode = scale_mode
        self.clr_iterations = 0.0
        self.trn_iterations = 0.0
        self.history: dict[str, list[Any]] = {}
        self._reset()

    def _reset(self) -> None:
        self.clr_iterations = 0.0

    def clr(self) -> Any:
        cycle = np.floor(1 + self.clr_iterations / (2 * self.step_size))
        x = np.abs(self.clr_iterations / self.step_size - 2 * cycle + 1)
        if self.scale_mode == "cycle":
            return self.base_lr + (self.max_lr - self.base_lr) * np.maximum(0, (1 - x)) * self.scale_fn(cycle)
        return self.base_lr + (self.max_lr - self.base_lr) * np.maximum(0, (1 - x)) * self.scale_fn(
            self.clr_iterations
        )

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.clr_iterations == 0:
            self.model.optimizer.learning_rate = self.base_lr
        else:
            self.model.optimizer.learning_rate = self.clr()

    def on_batch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self.trn_iterations += 1
        self.clr_iterations += 1
        self.model.optimizer.learning_rate = self.clr()
        self.history.setdefault("lr", []).append(
            float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        )
        self.history.setdefault("iterations", []).append(self.trn_iterations)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
