"""`MultiGPUCheckpoint`: CANDLE's ``ModelCheckpoint`` that saves the single-device model, for Keras 3.

CANDLE's benchmarks trained a ``multi_gpu_model`` wrapper, whose next-to-last
layer is the model being replicated, and checkpointed that inner model so the
file loads on one device.  This does the same: given a model whose
``layers[-2]`` is itself a Keras ``Model``, it saves that model; any other
model is saved whole.  Everything else (``filepath`` patterns, ``monitor``,
``save_best_only``, ...) is Keras' ``ModelCheckpoint``; ``mode="auto"`` judges
the monitored metric by the model ``fit`` trains, which carries the metrics.
"""

from __future__ import annotations

from typing import Any

import keras


class MultiGPUCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` saving the wrapped single-device model (see module docstring)."""

    def set_model(self, model: Any) -> None:
        self._trained = model
        layers = getattr(model, "layers", None) or []
        inner = layers[-2] if len(layers) >= 2 and isinstance(layers[-2], keras.Model) else model
        super().set_model(inner)

    def _set_monitor_op(self) -> None:
        # Keras infers min/max from the metrics of self.model; those live on the trained wrapper.
        saved: Any = getattr(self, "_model", None)
        setattr(self, "_model", getattr(self, "_trained", saved))  # noqa: B010
        try:
            super()._set_monitor_op()
        finally:
            setattr(self, "_model", saved)  # noqa: B010
