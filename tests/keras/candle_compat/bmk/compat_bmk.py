"""The benchmark's definitions, as a CANDLE ``<bmk>.py``: options, required keys, data, model."""

from __future__ import annotations

import os
from typing import Any

import candle
import keras
import numpy as np

file_path = os.path.dirname(os.path.realpath(__file__))

additional_definitions = [
    {"name": "dense", "type": int, "nargs": "+"},
    {"name": "dropout", "type": float},
]
required = ["epochs", "batch_size", "learning_rate", "optimizer", "dense", "dropout", "train_data"]


class CompatBmk(candle.Benchmark):
    def set_locals(self) -> None:
        self.required = set(required)
        self.additional_definitions = additional_definitions


def load_data(params: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """The CSV (header line, features, target last), split 80/20 into train and validation."""
    data = np.loadtxt(params["train_data"], delimiter=",", skiprows=1, dtype="float32")
    x, y = data[:, :-1], data[:, -1:]
    cut = len(data) * 4 // 5
    return x[:cut], y[:cut], x[cut:], y[cut:]


def build_model(params: dict[str, Any], features: int) -> Any:
    layers: list[Any] = [keras.Input((features,))]
    for units in params["dense"]:
        layers.append(keras.layers.Dense(units, activation="relu"))
        layers.append(keras.layers.Dropout(params["dropout"]))
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers)
