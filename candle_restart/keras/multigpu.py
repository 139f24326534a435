"""`MultiGPUCheckpoint`: CANDLE's ``ModelCheckpoint`` that saves the single-device model, for Keras 3.

CANDLE's benchmarks trained a ``multi_gpu_model`` wrapper, whose next-to-last
layer is the model being replicated, and checkpointed that inner model so the
file loads on one device.  This does the same: given a model whose
``layers[-2]`` is itself a Keras ``Model``, it saves that model; any other
model is saved whole.  Everything else (``filepath`` patterns, ``monitor``,
``save_best_only``, ...) is Keras' ``ModelCheckpoint``; ``mode="auto"`` judges
the monitored metric by the model ``fit`` trains, which carries the metrics
(`candle_restart.keras.internals.judged_by`).
"""

from __future__ import annotations

import keras

from candle_restart.keras.internals import judged_by


class MultiGPUCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` saving the wrapped single-device model (see module docstring)."""

    _trained: keras.Model | None = None

    def set_model(self, model: keras.Model) -> None:
        self._trained = model
        layers = getattr(model, "layers", None) or []
        inner = layers[-2] if len(layers) >= 2 and isinstance(layers[-2], keras.Model) else model
        super().set_model(inner)

    def _set_monitor_op(self) -> None:  # Keras' hook for mode="auto"; it reads self.model's metrics
        with judged_by(self, self._trained if self._trained is not None else self.model):
            super()._set_monitor_op()
