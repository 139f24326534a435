"""A training task for the population-based search's tests: real checkpoints through the core, no TensorFlow.

The "model" is the list of learning rates it was trained with, one per epoch (JSON), so a member
that started from another's checkpoint carries that member's history.  Its ``val_loss`` at each
epoch end is ``(log10(learning_rate) + 2) ** 2 + 1 / epoch``: a rate near 0.01 is best.
``epoch_seconds`` (default 0) is how long each epoch's work takes (a long training to stop).

Also the population tests' sweep YAML (`pbt_yaml`) and their in-process driver (`drive`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import yaml

from candle_restart.runtime.preempt import REQUEST, Preempted
from candle_restart.sweep import parse_sweep
from candle_restart.sweep.pbt import Population
from candle_restart.task import run_task
from tests.helpers import BytesCkpt, BytesModel

TRAINER = "tests.sweep.pbt_trainer:run"
SPACE = {"learning_rate": {"log_uniform": [0.0001, 1.0]}}
PBT = {"population": 4, "generations": 3, "interval": 2, "quantile": 0.25, "perturb": {"learning_rate": [0.5, 2.0]}}


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


def pbt_yaml(
    tmp_path: Path, pbt: dict[str, Any] | None = None, entry: str = TRAINER, params: dict[str, Any] | None = None, **search: Any
) -> Path:
    config = {
        "name": "pbt",
        "run_root": "runs",
        "entry": entry,
        # ckpt_keep_limit: the copies are kept, to be checked (a keep policy may delete them; origin.json stays)
        "params": {"samples": 64, "batch_size": 32, "ckpt_keep_limit": 10, **(params or {})},
        "search": {"metric": "val_loss", "seed": 4, "space": SPACE, "pbt": pbt or PBT, **search},
        "executor": {"kind": "local", "max_workers": 4},
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "pbt.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Stopped(Exception):
    """The driver stopped right after creating a member (as a kill there would leave it)."""


def drive(source: Path, stop_at: str | None = None) -> None:
    """Drive the population in this process, each member trained by the runner in this process."""

    def log(line: str) -> None:
        if stop_at and line.startswith(stop_at):
            raise Stopped(line)

    population = Population(parse_sweep(source), log)
    population.open()
    try:
        population.fill()
        while not population.done():
            for trial in list(population.trials.values()):
                if trial.task.task_id in population.final:
                    continue
                state, _ = trial.task.load_state()
                if state is None or state.status != "completed":
                    assert run_task(trial.task.path) == 0
                population.observe({trial.task.task_id: "completed"})
    finally:
        population.close()
