"""A stand-in for candle_lib's ``candle`` package: the parts a Keras benchmark touches.

candle_lib is not on the package registry, so the compatibility test carries
this shim, written from CANDLE's documented behaviour: ``Benchmark`` and
``finalize_parameters`` (a default-model file overridden by the command
line, CANDLE's ``--ckpt_*`` options added by ``ckpt_utils.ckpt_parser``),
``keras_default_config``, ``build_optimizer``, ``set_seed``,
``CandleRemoteMonitor`` (per-epoch records, written to
``output_dir/run.<run_id>.json``; there is no remote monitor to post to here)
and ``TerminateOnTimeOut``.

The checkpoint names of both generations are placeholders that fail loudly:
the test assigns candle_restart's classes onto them, the one thing swapped.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import json
import os
import time
from typing import Any

import keras

from candle import ckpt_utils
from candle.ckpt_utils import CandleCkpt, ModelType, str2bool


class _NotSwapped:
    """A checkpoint name of candle_lib whose implementation is not here."""

    name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"candle.{self.name}: candle_lib's checkpoint module is absent; swap one in")


class CandleCkptKeras(_NotSwapped):
    name = "CandleCkptKeras"


class CandleCheckpointCallback(_NotSwapped):
    name = "CandleCheckpointCallback"


class MultiGPUCheckpoint(_NotSwapped):
    name = "MultiGPUCheckpoint"


def restart(gParameters: dict[str, Any], model: Any, verbose: bool = True) -> Any:
    raise RuntimeError("candle.restart: candle_lib's checkpoint module is absent; swap one in")


class Benchmark:
    """CANDLE's benchmark description: where its files are, its default model file, its options."""

    def __init__(
        self, filepath: str, defmodel: str, framework: str, prog: str | None = None, desc: str | None = None
    ) -> None:
        self.file_path = filepath
        self.default_model = defmodel
        self.framework = framework
        self.prog = prog
        self.desc = desc
        self.required: set[str] = set()
        self.additional_definitions: list[dict[str, Any]] = []
        self.set_locals()

    def set_locals(self) -> None:
        """Benchmarks set ``required`` and ``additional_definitions`` here."""


_BASIC = [
    {"name": "epochs", "type": int},
    {"name": "batch_size", "type": int},
    {"name": "learning_rate", "type": float},
    {"name": "optimizer", "type": str},
    {"name": "rng_seed", "type": int},
    {"name": "train_data", "type": str},
    {"name": "output_dir", "type": str},
    {"name": "timeout", "type": int},
    {"name": "run_id", "type": str},
    {"name": "verbose", "type": str2bool},
]


def finalize_parameters(bmk: Benchmark) -> dict[str, Any]:
    """gParameters: the ``[Global_Params]`` of the default model file, overridden by the command line."""
    parser = argparse.ArgumentParser(prog=bmk.prog, description=bmk.desc)
    for d in _BASIC + bmk.additional_definitions:
        parser.add_argument("--" + d["name"], type=d.get("type", str), nargs=d.get("nargs"), default=None)
    ckpt_utils.ckpt_parser(parser)  # looked up now: whichever checkpoint module is in place
    args = vars(parser.parse_args())
    config = configparser.ConfigParser()
    config.read(os.path.join(bmk.file_path, bmk.default_model))
    params: dict[str, Any] = {k: ast.literal_eval(v) for k, v in config["Global_Params"].items()}
    params.update({k: v for k, v in args.items() if v is not None or k not in params})
    params.setdefault("output_dir", ".")
    params.setdefault("run_id", "RUN000")
    missing = sorted(k for k in bmk.required if params.get(k) is None)
    if missing:
        raise SystemExit(f"{bmk.prog}: required parameters missing: {missing}")
    return params


def keras_default_config() -> dict[str, Any]:
    return {
        "momentum_sgd": 0.0,
        "nesterov_sgd": False,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
        "rho": 0.9,
    }


def build_optimizer(optimizer: str, lr: float, kerasDefaults: dict[str, Any]) -> Any:
    if optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=lr, momentum=kerasDefaults["momentum_sgd"], nesterov=kerasDefaults["nesterov_sgd"]
        )
    if optimizer == "rmsprop":
        return keras.optimizers.RMSprop(
            learning_rate=lr, rho=kerasDefaults["rho"], epsilon=kerasDefaults["epsilon"]
        )
    return keras.optimizers.Adam(
        learning_rate=lr,
        beta_1=kerasDefaults["beta_1"],
        beta_2=kerasDefaults["beta_2"],
        epsilon=kerasDefaults["epsilon"],
    )


def set_seed(seed: int) -> None:
    keras.utils.set_random_seed(int(seed))


class CandleRemoteMonitor(keras.callbacks.Callback):
    """Records each epoch's logs with the run's identity; writes them at the end of training."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.params_candle = params
        self.records: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.records.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        out = os.path.join(self.params_candle["output_dir"], f"run.{self.params_candle['run_id']}.json")
        with open(out, "w") as f:
            json.dump(
                {"parameters": {k: str(v) for k, v in self.params_candle.items()}, "epochs": self.records}, f
            )


class TerminateOnTimeOut(keras.callbacks.Callback):
    """Stops training once ``timeout_in_sec`` have passed (-1: never)."""

    def __init__(self, timeout_in_sec: int = -1) -> None:
        super().__init__()
        self.timeout_in_sec = timeout_in_sec
        self.start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.timeout_in_sec >= 0 and time.monotonic() - self.start > self.timeout_in_sec:
            self.model.stop_training = True


__all__ = [
    "Benchmark",
    "CandleCheckpointCallback",
    "CandleCkpt",
    "CandleCkptKeras",
    "CandleRemoteMonitor",
    "ModelType",
    "MultiGPUCheckpoint",
    "TerminateOnTimeOut",
    "build_optimizer",
    "finalize_parameters",
    "keras_default_config",
    "restart",
    "set_seed",
]
