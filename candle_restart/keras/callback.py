"""`CandleCkptKeras`: CANDLE's Keras checkpoint callback, for Keras 3, durable and exact.

Drop-in for ``candle.ckpt_keras_utils.CandleCkptKeras`` (same constructor,
methods, gParameters keys, directory layout, ``ckpt-info.json`` keys and log
lines).  Each checkpoint holds the model file (``model.keras``, loadable with
``keras.models.load_model``; ``model.weights.h5`` with
``ckpt_save_weights_only``) and ``train_state.npz`` (weights, optimizer
and seed-generator state), which `restart` loads so training resumes
bit-for-bit.  The generic logic is in `candle_restart.ckpt.candle.CandleCkpt`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras

from candle_restart.ckpt.candle import STATE_FILE, CandleCkpt, infer_direction
from candle_restart.ckpt.errors import ParamError
from candle_restart.keras.state import load_state, save_state


class CandleCkptKeras(CandleCkpt, keras.callbacks.Callback):
    """Keras callback that checkpoints per CANDLE's gParameters; see the module docstring."""

    def __init__(self, gParameters: dict[str, Any], logger: Any = "DEFAULT", verbose: bool = True) -> None:
        keras.callbacks.Callback.__init__(self)
        CandleCkpt.__init__(self, gParameters, logger, verbose)
        if self.save_weights_only:
            self.model_file_name = "model.weights.h5"

    @property
    def model(self) -> Any:
        return self._model

    def set_model(self, model: Any) -> None:
        """model: The Keras model."""
        self._model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def direction(self, metric: str) -> str:
        """ "+" or "-": from ``ckpt_save_best_mode``, the metric object, or the metric's name."""
        mode = self.settings.save_best_mode
        if mode == "auto" and self.model is not None:
            name = metric.removeprefix("val_")
            for holder in getattr(self.model, "metrics", []):
                for m in [holder, *getattr(holder, "metrics", [])]:
                    if getattr(m, "name", None) == name and getattr(m, "_direction", None) in ("up", "down"):
                        return "+" if m._direction == "up" else "-"
        found = infer_direction(metric, mode)
        if found is None:
            raise ParamError(
                "gParameters",
                "ckpt_save_best_mode",
                f"cannot tell whether '{metric}' should go up or down; set it to min or max",
            )
        return found

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        metric = self.save_best_metric
        if self.save_best and metric not in logs:
            raise ParamError(
                "gParameters",
                "ckpt_save_best_metric",
                f"'{metric}' is not among the metrics of this model: {sorted(logs)}",
            )
        value = float(logs[metric]) if metric in logs else math.nan
        direction = self.direction(metric) if self.save_best else "-"
        self.ckpt_epoch(epoch, direction, value)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.report_final()

    def write_model_backend(self, model: Any, epoch: int) -> None:
        model_file = Path(self.model_file)
        if self.save_weights_only:
            model.save_weights(model_file)
        else:
            model.save(model_file)
        save_state(model, model_file.parent / STATE_FILE)

    def build_model(self, model_file: Path | str) -> None:
        """Load a checkpoint into ``self.model``: full state when present, else CANDLE's weights file."""
        model_file = Path(model_file)
        state = model_file.parent / STATE_FILE
        if state.is_file():
            load_state(self.model, state)
        else:
            self.model.load_weights(model_file)


CandleCheckpointCallback = CandleCkptKeras


def restart(gParameters: dict[str, Any], model: Any, verbose: bool = True) -> dict[str, Any] | None:
    """CANDLE's older entry point: restart ``model`` per gParameters; the ckpt-info dict or None."""
    return CandleCkptKeras(gParameters, verbose=verbose).restart(model, verbose=verbose)
