"""``search.pbt``: population-based training instead of the ask/tell samplers.

::

    search:
      metric: val_loss                 # ranked at each generation's last epoch
      direction: minimize
      seed: 1                          # the initial values and every exploit/explore draw
      space:                           # each member's initial values (as `vary.random.space`)
        learning_rate: {log_uniform: [0.001, 0.1]}
      pbt:
        population: 4                  # members trained side by side
        generations: 3                 # rounds of `interval` epochs
        interval: 2                    # epochs per generation
        quantile: 0.25                 # exploit: the bottom quantile copies a top-quantile member
        perturb: {learning_rate: [0.8, 1.25]}   # explore: each a factor drawn from its list
        epochs_key: epochs             # the gParameter that says how many epochs to train

With ``pbt:`` the keys ``trials``, ``in_flight``, ``sampler`` and ``prune`` are refused
(the population and generations give the trials; the members run together).  Each
perturbed key must be a numeric key of ``space`` (its bounds clip the perturbed value).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from candle_restart.sweep.schema import _Checker

PBT_KEYS = frozenset({"population", "generations", "interval", "quantile", "perturb", "epochs_key"})
NOT_WITH_PBT = ("trials", "in_flight", "sampler", "prune")


class PbtBlock(TypedDict):
    """``search.pbt``, checked, defaults filled in."""

    population: int
    generations: int
    interval: int
    quantile: float
    perturb: dict[str, list[float]]
    epochs_key: str


def check_pbt(c: _Checker, raw: object, search: dict[str, object], space: dict[str, dict[str, list[object]]]) -> PbtBlock:
    """``search.pbt`` checked key by key (SweepError naming the first bad key)."""
    path = ("search", "pbt")
    pbt = c.mapping(raw, path, PBT_KEYS)
    for key in NOT_WITH_PBT:
        if key in search:
            raise c.fail(("search", key), "is not used with pbt: (population and generations give the trials)")
    population = c.integer(pbt.get("population", 4), (*path, "population"), 2)
    generations = c.integer(pbt.get("generations", 2), (*path, "generations"), 1)
    interval = c.integer(pbt.get("interval", 1), (*path, "interval"), 1)
    quantile = pbt.get("quantile", 0.25)
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0 < quantile <= 0.5:
        raise c.fail((*path, "quantile"), f"must be a number in (0, 0.5], got {quantile!r}")
    epochs_key = c.string(pbt.get("epochs_key", "epochs"), (*path, "epochs_key"))
    if not epochs_key:
        raise c.fail((*path, "epochs_key"), "must name the gParameter of the number of epochs")
    perturb: dict[str, list[float]] = {}
    for key, factors in c.mapping(pbt.get("perturb", {}), (*path, "perturb")).items():
        where = (*path, "perturb", key)
        if key not in space:
            raise c.fail(where, f"must be a key of search.space (one of {', '.join(sorted(space))})")
        if "choice" in space[key]:
            raise c.fail(where, "perturbs a number: search.space gives it a choice")
        if (
            not isinstance(factors, list)
            or not factors
            or not all(
                isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) and f > 0 for f in factors
            )
        ):
            raise c.fail(where, f"must be a non-empty list of factors > 0, got {factors!r}")
        perturb[key] = [float(f) for f in factors]
    return PbtBlock(
        population=population,
        generations=generations,
        interval=interval,
        quantile=float(quantile),
        perturb=perturb,
        epochs_key=epochs_key,
    )
