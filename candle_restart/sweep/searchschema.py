"""The ``search:`` section of a sweep YAML: an adaptive search instead of a fixed ``vary:``.

::

    search:
      trials: 12                       # the trial budget (tasks asked in all)
      in_flight: 3                     # trials running or queued at once (default 1)
      seed: 1                          # the sampler's seed (default 0)
      sampler: tpe                     # random | tpe | cmaes | genetic (default tpe)
      metric: val_loss                 # a metric the task logs each epoch (ckpts/events.jsonl)
      direction: minimize              # or maximize (default minimize)
      space:                           # the distributions of `vary.random.space`
        learning_rate: {log_uniform: [0.0001, 0.1]}
        hidden: {int_uniform: [4, 32]}
      prune: {rule: median, warmup_epochs: 1, startup_trials: 2}   # or rule: asha (min_epochs,
                                                                   # reduction_factor); off unless given
      pbt: {population: 4, generations: 3, interval: 2, ...}   # population-based training instead
                                                               # of a sampler: see pbtschema.py

Checked here with the sweep's one-line errors; nothing imports the search library until a
search runs (`candle_restart.sweep.search`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, TypedDict

from candle_restart.sweep.pbtschema import PbtBlock, check_pbt

if TYPE_CHECKING:
    from candle_restart.sweep.schema import _Checker

SEARCH_KEYS = frozenset({"trials", "in_flight", "seed", "sampler", "metric", "direction", "space", "prune", "pbt"})
SAMPLERS = ("random", "tpe", "cmaes", "genetic")
DIRECTIONS = ("minimize", "maximize")
RULES = ("median", "asha")
PRUNE_KEYS = {
    "median": frozenset({"rule", "warmup_epochs", "startup_trials"}),
    "asha": frozenset({"rule", "min_epochs", "reduction_factor"}),
}
SPACE_KINDS = frozenset({"uniform", "log_uniform", "int_uniform", "choice"})

SamplerName = Literal["random", "tpe", "cmaes", "genetic"]


class PruneBlock(TypedDict):
    """``search.prune``: the rule and its integer settings (each with its default filled in)."""

    rule: str
    settings: dict[str, int]


class SearchBlock(TypedDict):
    """``search``, checked, with every default filled in."""

    trials: int
    in_flight: int
    seed: int
    sampler: str
    metric: str
    direction: str
    space: dict[str, dict[str, list[object]]]
    prune: PruneBlock | None
    pbt: PbtBlock | None  # population-based training (trials: population x generations)


_PRUNE_DEFAULTS = {
    "median": {"warmup_epochs": 1, "startup_trials": 2},
    "asha": {"min_epochs": 1, "reduction_factor": 3},
}


def _one_of(c: _Checker, value: object, path: tuple[str, ...], allowed: tuple[str, ...]) -> str:
    from candle_restart.sweep.program import did_you_mean

    if not isinstance(value, str) or value not in allowed:
        hint = did_you_mean(value, set(allowed)) if isinstance(value, str) else ""
        raise c.fail(path, f"must be one of {', '.join(allowed)}, got {value!r}{hint}")
    return value


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _space(c: _Checker, raw: object) -> dict[str, dict[str, list[object]]]:
    space = c.mapping(raw, ("search", "space"))
    if not space:
        raise c.fail(("search", "space"), "is empty: name at least one parameter and its distribution")
    checked: dict[str, dict[str, list[object]]] = {}
    for key, value in space.items():
        path = ("search", "space", key)
        dist = c.mapping(value, path, SPACE_KINDS)
        if len(dist) != 1:
            raise c.fail(path, f"must name exactly one of {', '.join(sorted(SPACE_KINDS))}")
        kind, arg = next(iter(dist.items()))
        if kind == "choice":
            if not isinstance(arg, list) or not arg or not all(
                v is None or isinstance(v, (str, int, float, bool)) for v in arg
            ):
                raise c.fail((*path, kind), "must be a non-empty list of numbers, strings or booleans")
            checked[key] = {kind: list(arg)}
            continue
        bounds = [v for v in arg if _finite(v)] if isinstance(arg, list) else []
        if len(bounds) != 2 or len(arg) != 2 or not bounds[0] < bounds[1]:  # type: ignore[arg-type]
            raise c.fail((*path, kind), f"must be [low, high] with low < high, got {arg!r}")
        if kind == "log_uniform" and bounds[0] <= 0:
            raise c.fail((*path, kind), f"must have low > 0 (a log scale), got {arg!r}")
        if kind == "int_uniform" and not all(isinstance(v, int) for v in bounds):
            raise c.fail((*path, kind), f"must be two integers, got {arg!r}")
        checked[key] = {kind: list(bounds)}
    return checked


def _prune(c: _Checker, raw: object) -> PruneBlock:
    prune = c.mapping(raw, ("search", "prune"))
    rule = _one_of(c, prune.get("rule"), ("search", "prune", "rule"), RULES)
    c.mapping(prune, ("search", "prune"), PRUNE_KEYS[rule])
    settings = dict(_PRUNE_DEFAULTS[rule])
    for key in settings:
        if key in prune:
            settings[key] = c.integer(prune[key], ("search", "prune", key), 2 if key == "reduction_factor" else 0)
    return PruneBlock(rule=rule, settings=settings)


def _seed(c: _Checker, value: object) -> int:
    seed = c.integer(value, ("search", "seed"), 0)
    if seed >= 2**32:  # the samplers seed NumPy's generators
        raise c.fail(("search", "seed"), f"must be below 2**32, got {seed}")
    return seed


def check_search(c: _Checker, raw: object) -> SearchBlock:
    """``search`` checked key by key (SweepError naming the first bad key), defaults filled in."""
    search = c.mapping(raw, ("search",), SEARCH_KEYS)
    pbt_raw = search.get("pbt")
    for key in ("metric", "space") if pbt_raw is not None else ("trials", "metric", "space"):
        if key not in search:
            raise c.fail(("search", key), "is required")
    metric = c.string(search["metric"], ("search", "metric"))
    if not metric:
        raise c.fail(("search", "metric"), "must name a metric the task logs each epoch (val_loss, ...)")
    space = _space(c, search["space"])
    pbt = check_pbt(c, pbt_raw, search, space) if pbt_raw is not None else None
    if pbt is not None:
        trials, in_flight = pbt["population"] * pbt["generations"], pbt["population"]
    else:
        trials = c.integer(search["trials"], ("search", "trials"), 1)
        in_flight = c.integer(search.get("in_flight", 1), ("search", "in_flight"), 1)
    return SearchBlock(
        trials=trials,
        in_flight=min(in_flight, trials),
        seed=_seed(c, search.get("seed", 0)),
        sampler=_one_of(c, search.get("sampler", "tpe" if pbt is None else "random"), ("search", "sampler"), SAMPLERS),
        metric=metric,
        direction=_one_of(c, search.get("direction", "minimize"), ("search", "direction"), DIRECTIONS),
        space=space,
        prune=_prune(c, search["prune"]) if search.get("prune") is not None else None,
        pbt=pbt,
    )
