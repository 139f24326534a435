"""A search block's Optuna study: its sampler (seeded), pruner and direction, and its space as
Optuna distributions.  Always a fresh in-memory study: `candle_restart.sweep.search` rebuilds its
state from the run root on every start, so nothing of Optuna is ever stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from candle_restart.sweep.searchschema import SearchBlock

if TYPE_CHECKING:
    import optuna


def distributions(block: SearchBlock) -> dict[str, Any]:
    """The block's ``space`` as Optuna distributions, by parameter name."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    made: dict[str, Any] = {}
    for key, dist in block["space"].items():
        kind, arg = next(iter(dist.items()))
        if kind == "choice":
            made[key] = CategoricalDistribution(tuple(arg))  # type: ignore[arg-type]
        elif kind == "int_uniform":
            made[key] = IntDistribution(int(arg[0]), int(arg[1]))  # type: ignore[call-overload]
        else:
            made[key] = FloatDistribution(float(arg[0]), float(arg[1]), log=kind == "log_uniform")  # type: ignore[arg-type]
    return made


def make_study(block: SearchBlock) -> optuna.Study:
    """A fresh in-memory study with the block's sampler (seeded) and pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = block["seed"]
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False),
        "genetic": lambda: optuna.samplers.NSGAIISampler(seed=seed),
    }
    prune = block["prune"]
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if prune is not None and prune["rule"] == "median":
        s = prune["settings"]
        pruner = optuna.pruners.MedianPruner(n_startup_trials=s["startup_trials"], n_warmup_steps=s["warmup_epochs"])
    elif prune is not None:
        s = prune["settings"]
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=s["min_epochs"], reduction_factor=s["reduction_factor"]
        )
    direction: Literal["minimize", "maximize"] = "maximize" if block["direction"] == "maximize" else "minimize"
    return optuna.create_study(direction=direction, sampler=samplers[block["sampler"]](), pruner=pruner)
