"""The sweep YAML: schema, validation with ``file:line: key: problem`` messages, and the parsed `Sweep`.

::

    name: demo                       # required; the prefix of every task id
    run_root: runs/demo              # relative to this file's directory
    entry: package.module:run        # or: command: [python, bench.py] (exactly one; see program.py)
    dir_flags: true                  # command only: append --ckpt_directory= and --output_dir=
    params: {epochs: 4}              # base gParameters of every task
    vary:                            # optional; parameter sets = grid x + list + random
      # (or, instead of vary, an adaptive ``search:``: see searchschema.py)
      grid: {learning_rate: [0.01, 0.001]}
      list: [{hidden: 16}, {hidden: 64}]
      random: {samples: 4, seed: 1, space: {dropout: {uniform: [0.0, 0.5]}, hidden: {choice: [16, 32]}}}
    executor:
      kind: local                    # local (default) | slurm
      max_workers: 2
      slurm: {partition: debug, walltime: "00:30:00", ...}
    restart: {max_failures: 2, max_preemptions: 50, backoff_seconds: 30}
    demo: {preempt_task: 0, after_checkpoints: 2, signals: 1}   # off unless present
    parent: base-0123456789ab        # optional: every task starts from a copy of this task's newest
                                     # verified checkpoint (a task id in run_root, or an absolute path)
    # or each task its own parent (a leave-out tree's next level): the task of sweep ``stage1``
    # in run_root whose parameters equal this task's on every ``match`` key
    parent: {sweep: stage1, match: [fold]}

Validation reports the first problem only and creates nothing.  An unknown key
at any level is refused with the closest known key ("did you mean ...");
a value YAML 1.1 read as a base-60 number (an unquoted ``walltime: 2:00:00``
is 7200) is refused with the quoted form to write instead.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, cast

from candle_restart.coordinator.policy import BUDGETS, RESTART_KEYS
from candle_restart.executor import (
    EXECUTOR_KEYS,
    KIND,
    KINDS,
    MAX_WORKERS,
    SLURM_KEYS,
    ExecutorBlock,
    check_slurm,
)
from candle_restart.records.taskspec import valid_parent
from candle_restart.sweep.program import check_program, did_you_mean
from candle_restart.sweep.searchschema import SearchBlock, check_search
from candle_restart.sweep.yamlfile import MAX_DEPTH, MAX_VALUES, SweepError, load_yaml

__all__ = ["MAX_DEPTH", "MAX_VALUES", "Sweep", "SweepError", "load_yaml", "parse_sweep"]

TOP_KEYS = {
    "name",
    "run_root",
    "entry",
    "command",
    "dir_flags",
    "params",
    "vary",
    "search",
    "executor",
    "restart",
    "demo",
    "parent",
}
VARY_KEYS = {"grid", "list", "random"}
PARENT_KEYS = {"sweep", "match"}
SWEEP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,79}$")  # the prefix of every task id
DISTRIBUTIONS = {"uniform", "log_uniform", "choice", "int_uniform"}

Params = dict[str, object]  # gParameters as the YAML wrote them
Distribution = dict[str, list[object]]  # one of `DISTRIBUTIONS`: its arguments


class RandomBlock(TypedDict, total=False):
    """``vary.random``: ``samples`` parameter sets drawn from ``space`` (``seed``: 0 unless set)."""

    samples: int
    seed: int
    space: dict[str, Distribution]


class DemoBlock(TypedDict, total=False):
    """``demo``: SIGUSR1 to task ``preempt_task`` after ``after_checkpoints``, ``signals`` times."""

    preempt_task: int
    after_checkpoints: int
    signals: int


RANDOM_KEYS = RandomBlock.__optional_keys__
DEMO_KEYS = DemoBlock.__optional_keys__
Restart = dict[str, float]  # a `Policy` field (`RESTART_KEYS`) and its value


@dataclass(frozen=True)
class ParentMatch:
    """``parent: {sweep, match}``: each task's parent is the task of sweep ``sweep`` (in the same
    run root) whose parameters equal the task's on every key of ``match``."""

    sweep: str
    match: tuple[str, ...]


@dataclass(frozen=True)
class Sweep:
    """A validated sweep; paths are absolute."""

    name: str
    source: Path
    run_root: Path
    entry: str | None
    command: list[str] | None
    params: Params
    grid: dict[str, list[object]] = field(default_factory=dict)
    explicit: list[Params] = field(default_factory=list)
    random: RandomBlock | None = None
    executor: ExecutorBlock = field(default_factory=lambda: ExecutorBlock(kind=KIND))
    restart: Restart = field(default_factory=dict)
    demo: DemoBlock | None = None
    python_path: list[str] = field(default_factory=list)  # first on the import path of an entry
    dir_flags: bool = True  # a command gets --ckpt_directory= and --output_dir=
    search: SearchBlock | None = None  # an adaptive search (`searchschema`) instead of ``vary``
    parent: str | None = None  # every task's warm start (`candle_restart.task.warm`)
    parent_match: ParentMatch | None = None  # or each task's own, found by its parameters (`expand`)


MAX_INTEGER = 10**18  # no count, limit or size of a sweep comes near it


class _Checker:
    """Type checks that name the file, the line and the dotted key."""

    def __init__(
        self,
        source: Path,
        lines: dict[tuple[str, ...], int],
        base60: dict[tuple[str, ...], str] | None = None,
    ) -> None:
        self.source, self.lines, self.base60 = source, lines, base60 or {}

    def fail(self, path: tuple[str, ...], problem: str) -> SweepError:
        known = path
        while known and known not in self.lines:  # a missing key: point at its parent
            known = known[:-1]
        where = f"{self.source}:{self.lines.get(known, 1)}" if self.lines else str(self.source)
        return SweepError(where, ".".join(path) or None, problem)

    def mapping(
        self, value: object, path: tuple[str, ...], allowed: AbstractSet[str] | None = None
    ) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"keys must be strings, got {key!r}")
            if allowed is not None and key not in allowed:
                raise self.fail(
                    (*path, key),
                    f"unknown key{did_you_mean(key, allowed)} (expected one of {', '.join(sorted(allowed))})",
                )
        return value

    def string(self, value: object, path: tuple[str, ...]) -> str:
        if isinstance(value, str):
            return value
        written = self.base60.get(path)
        if written is not None:  # YAML 1.1 reads 2:00:00 as 7200
            raise self.fail(
                path, f"must be a string; YAML read {written} as the number {value!r}: quote it: '{written}'"
            )
        raise self.fail(path, f"must be a string, got {value!r}")

    def integer(self, value: object, path: tuple[str, ...], minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(path, f"must be an integer >= {minimum}, got {value!r}")
        if value >= MAX_INTEGER:
            raise self.fail(path, f"must be an integer below {MAX_INTEGER:.0e}, got {value!r}")
        return value

    def number(self, value: object, path: tuple[str, ...]) -> float:
        """``value`` unchanged (an int stays an int) when it is a finite number >= 0."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < MAX_INTEGER:
            raise self.fail(path, f"must be a finite number >= 0, got {value!r}")
        return value

    def finite(self, value: object, path: tuple[str, ...]) -> None:
        """Every float inside ``value`` (a params or vary tree) is finite: NaN and infinity are not
        values a task can be given (``task.json`` is strict JSON)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(path, f"must be a finite number, got {value!r}")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            self.finite(item, (*path, str(key)))


def _check_vary(
    c: _Checker, vary: dict[str, object]
) -> tuple[dict[str, list[object]], list[Params], RandomBlock | None]:
    grid: dict[str, list[object]] = {}
    for key, values in c.mapping(vary.get("grid", {}), ("vary", "grid")).items():
        if not isinstance(values, list) or not values:
            raise c.fail(("vary", "grid", key), f"must be a non-empty list of values, got {values!r}")
        grid[key] = values
    explicit = vary.get("list", [])
    if not isinstance(explicit, list) or not all(isinstance(x, dict) for x in explicit):
        raise c.fail(("vary", "list"), "must be a list of parameter mappings")
    if "list" in vary and not explicit:
        raise c.fail(("vary", "list"), "is empty")
    raw = vary.get("random")
    if raw is None:
        return grid, explicit, None
    random = c.mapping(raw, ("vary", "random"), RANDOM_KEYS)
    block = RandomBlock(samples=c.integer(random.get("samples"), ("vary", "random", "samples"), 1))
    seed = c.integer(random.get("seed", 0), ("vary", "random", "seed"), 0)
    if "seed" in random:
        block["seed"] = seed
    space = c.mapping(random.get("space"), ("vary", "random", "space"))
    if not space:
        raise c.fail(("vary", "random", "space"), "is empty")
    block["space"] = {}
    for key, value in space.items():
        path = ("vary", "random", "space", key)
        dist = c.mapping(value, path, DISTRIBUTIONS)
        if len(dist) != 1:
            raise c.fail(path, f"must name exactly one of {', '.join(sorted(DISTRIBUTIONS))}")
        kind, arg = next(iter(dist.items()))
        if not isinstance(arg, list) or not arg or (kind != "choice" and len(arg) != 2):
            raise c.fail(
                (*path, kind), "must be [low, high]" if kind != "choice" else "must be a non-empty list"
            )
        block["space"][key] = {kind: arg}
    return grid, explicit, block


def _check_executor(c: _Checker, raw: object) -> ExecutorBlock:
    """The ``executor`` block with its defaults; the ``provider`` keys are checked against the
    Parsl provider class of its kind (imported only when a ``provider`` block is given)."""
    executor = dict(c.mapping(raw, ("executor",), EXECUTOR_KEYS))
    kind = executor.setdefault("kind", KIND)
    if not isinstance(kind, str) or kind not in KINDS:
        hint = did_you_mean(kind, set(KINDS)) if isinstance(kind, str) else ""
        raise c.fail(("executor", "kind"), f"must be one of {', '.join(KINDS)}, got {kind!r}{hint}")
    c.integer(executor.setdefault("max_workers", MAX_WORKERS), ("executor", "max_workers"), 1)
    for key, minimum in (("blocks", 1), ("nodes_per_block", 1), ("gpus_per_node", 0)):
        if key in executor:
            c.integer(executor[key], ("executor", key), minimum)
    executor["slurm"] = check_slurm(
        c, dict(c.mapping(executor.get("slurm", {}), ("executor", "slurm"), SLURM_KEYS)), ("executor", "slurm")
    )
    if executor.get("provider") is not None:
        provider = dict(c.mapping(executor["provider"], ("executor", "provider")))
        from candle_restart.parsl.configs import check_provider_options

        problem = check_provider_options(kind, provider)
        if problem is not None:
            key, text = problem
            raise c.fail(
                ("executor", "provider") if key == "provider" else ("executor", "provider", key), text
            )
        executor["provider"] = provider
    return cast(ExecutorBlock, executor)  # every key of EXECUTOR_KEYS checked above for its type


def _check_restart(c: _Checker, raw: object, path: tuple[str, ...] = ("restart",)) -> Restart:
    restart = c.mapping(raw, path, RESTART_KEYS)
    checked: Restart = {}
    for key, value in restart.items():
        if key in BUDGETS or key == "host_bad_ends":  # integers >= 0 (0: never)
            checked[key] = c.integer(value, (*path, key), 0)
        elif key == "max_excluded_share":  # a share of the partition's nodes
            checked[key] = c.number(value, (*path, key))
            if checked[key] > 1:
                raise c.fail((*path, key), f"must be a share from 0 to 1, got {value!r}")
        else:
            checked[key] = c.number(value, (*path, key))
    return checked


def check_restart_manifest(restart: object, manifest: Path) -> Restart:
    """The ``restart`` policy a sweep manifest recorded, checked as the YAML's was; SweepError if not."""
    return _check_restart(_Checker(manifest, {}), restart)


def _check_demo(c: _Checker, raw: object) -> DemoBlock:
    """The ``demo`` block with every key: a missing one is its minimum (task 0, 1 checkpoint, once)."""
    demo = c.mapping(raw, ("demo",), DEMO_KEYS)

    def read(key: str, minimum: int) -> int:
        return c.integer(demo.get(key, minimum), ("demo", key), minimum)

    return DemoBlock(
        preempt_task=read("preempt_task", 0), after_checkpoints=read("after_checkpoints", 1), signals=read("signals", 1)
    )


def parse_sweep(source: str | os.PathLike[str]) -> Sweep:
    """Load and validate a sweep YAML; SweepError on the first problem."""
    source = Path(source).resolve()
    base60: dict[tuple[str, ...], str] = {}
    data, lines = load_yaml(source, base60)
    c = _Checker(source, lines, base60)
    data = c.mapping(data, (), TOP_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not SWEEP_NAME.match(name):
        raise c.fail(("name",), f"must be a short safe name (letters, digits, _.=+-), got {name!r}")
    run_root = data.get("run_root", f"runs/{name}")
    if not isinstance(run_root, str) or not run_root:
        raise c.fail(("run_root",), f"must be a path, got {run_root!r}")
    program = check_program(c, data)
    params = c.mapping(data.get("params", {}), ("params",))
    c.finite(params, ("params",))
    c.finite(data.get("vary", {}), ("vary",))
    grid, explicit, random = _check_vary(c, c.mapping(data.get("vary", {}), ("vary",), VARY_KEYS))
    executor = _check_executor(c, data.get("executor", {}))
    restart = _check_restart(c, data.get("restart", {}))
    demo = _check_demo(c, data["demo"]) if data.get("demo") is not None else None
    search = check_search(c, data["search"]) if data.get("search") is not None else None
    if search is not None and data.get("vary"):
        raise c.fail(("search",), "a sweep has either vary: (tasks known in advance) or search:, not both")
    root = Path(run_root) if os.path.isabs(run_root) else source.parent / run_root
    parent = data.get("parent")
    if parent is not None and search is not None:
        raise c.fail(("parent",), "is not used with search: (a search's tasks start fresh or from each other)")
    parent_match = _check_parent_match(c, parent, name) if isinstance(parent, dict) else None
    if parent is not None and parent_match is None and not valid_parent(parent):
        raise c.fail(("parent",), f"must be a task id in run_root or an absolute task directory, got {parent!r}")
    return Sweep(
        name,
        source,
        root.resolve(),
        program.entry,
        program.command,
        dict(params),
        grid,
        list(explicit),
        random,
        executor,
        restart,
        demo,
        program.python_path,
        program.dir_flags,
        search,
        parent if isinstance(parent, str) else None,
        parent_match,
    )


def _check_parent_match(c: _Checker, raw: dict[object, object], name: str) -> ParentMatch:
    block = c.mapping(raw, ("parent",), PARENT_KEYS)
    sweep = block.get("sweep")
    if not isinstance(sweep, str) or not SWEEP_NAME.match(sweep):
        raise c.fail(("parent", "sweep"), f"must be the name of a sweep in run_root, got {sweep!r}")
    if sweep == name:
        raise c.fail(("parent", "sweep"), f"names this sweep ({name}); a task cannot start from its own sweep's")
    match = block.get("match")
    if not isinstance(match, list) or not match or not all(isinstance(k, str) and k for k in match):
        raise c.fail(("parent", "match"), f"must be a non-empty list of parameter names, got {match!r}")
    return ParentMatch(sweep, tuple(match))
