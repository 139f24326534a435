"""The sweep YAML: schema, validation with ``file:line: key: problem`` messages, and the parsed `Sweep`.

::

    name: demo                       # required; the prefix of every task id
    run_root: runs/demo              # relative to this file's directory
    entry: package.module:run        # or: command: [python, bench.py] (exactly one)
    params: {epochs: 4}              # base gParameters of every task
    vary:                            # optional; parameter sets = grid x + list + random
      grid: {learning_rate: [0.01, 0.001]}
      list: [{hidden: 16}, {hidden: 64}]
      random: {samples: 4, seed: 1, space: {dropout: {uniform: [0.0, 0.5]}, hidden: {choice: [16, 32]}}}
    executor:
      kind: local                    # local (default) | slurm
      max_workers: 2
      slurm: {partition: debug, walltime: "00:30:00", ...}
    restart: {max_failures: 2, max_preemptions: 50, backoff_seconds: 30}
    demo: {preempt_task: 0, after_checkpoints: 2, signals: 1}   # off unless present

Validation reports the first problem only and creates nothing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from candle_restart.ckpt.errors import CkptError
from candle_restart.ckpt.jsonio import utf8

TOP_KEYS = {"name", "run_root", "entry", "command", "params", "vary", "executor", "restart", "demo"}
VARY_KEYS = {"grid", "list", "random"}
RANDOM_KEYS = {"samples", "seed", "space"}
EXECUTOR_KEYS = {"kind", "max_workers", "blocks", "nodes_per_block", "gpus_per_node", "slurm", "provider"}
EXECUTOR_KINDS = ("local", "slurm", "pbspro", "lsf", "flux")
SLURM_KEYS = {
    "partition",
    "account",
    "qos",
    "walltime",
    "nodes",
    "worker_init",
    "scheduler_options",
    "gres",
    "signal_seconds",
    "throttle",
    "extra",
    "exclusive",
    "cores_per_node",
    "mem_per_node",
    "address",
    "self_requeue",
    "requeue",
    "gpus_per_task",
}
RESTART_KEYS = {"max_failures", "max_preemptions", "backoff_seconds"}
DEMO_KEYS = {"preempt_task", "after_checkpoints", "signals"}
DISTRIBUTIONS = {"uniform", "log_uniform", "choice", "int_uniform"}


class SweepError(CkptError):
    """The sweep YAML is invalid: ``file:line: key: problem``."""


@dataclass(frozen=True)
class Sweep:
    """A validated sweep; paths are absolute."""

    name: str
    source: Path
    run_root: Path
    entry: str | None
    command: list[str] | None
    params: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    explicit: list[dict[str, Any]] = field(default_factory=list)
    random: dict[str, Any] | None = None
    executor: dict[str, Any] = field(default_factory=lambda: {"kind": "local"})
    restart: dict[str, Any] = field(default_factory=dict)
    demo: dict[str, Any] | None = None


class _Checker:
    """Type checks that name the file, the line and the dotted key."""

    def __init__(self, source: Path, lines: dict[tuple[str, ...], int]) -> None:
        self.source, self.lines = source, lines

    def fail(self, path: tuple[str, ...], problem: str) -> SweepError:
        known = path
        while known and known not in self.lines:  # a missing key: point at its parent
            known = known[:-1]
        where = f"{self.source}:{self.lines.get(known, 1)}" if self.lines else str(self.source)
        return SweepError(where, ".".join(path) or None, problem)

    def mapping(self, value: Any, path: tuple[str, ...], allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"keys must be strings, got {key!r}")
            if allowed is not None and key not in allowed:
                raise self.fail((*path, key), f"unknown key; expected one of {', '.join(sorted(allowed))}")
        return value

    def integer(self, value: Any, path: tuple[str, ...], minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(path, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, value: Any, path: tuple[str, ...]) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise self.fail(path, f"must be a number >= 0, got {value!r}")
        return float(value)


MAX_DEPTH = 64  # mappings and lists nested deeper than this are refused
MAX_VALUES = 100_000  # values after YAML aliases are expanded: more is refused (an "alias bomb")


class _TooDeep(Exception):
    pass


def _walk(
    node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], int], sizes: dict[int, int], depth: int
) -> int:
    """Record the line of every key path into ``out``; return how many values ``node`` expands to.

    Each node is walked once (``sizes`` is the memo), so aliases cost nothing here; the paths
    under a second use of an alias have no line of their own and point at their parent's.
    """
    if id(node) in sizes:
        return sizes[id(node)]
    if depth > MAX_DEPTH:
        raise _TooDeep
    out.setdefault(path, node.start_mark.line + 1)
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            key = (*path, name)
            size += _walk(key_node, (*path, "?"), {}, sizes, depth + 1)
            size += _walk(value_node, key, out, sizes, depth + 1)
            out[key] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            size += _walk(item, (*path, str(i)), out, sizes, depth + 1)
    sizes[id(node)] = size
    return size


def load_yaml(source: Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Parse ``source``; return the data and the line of every key path.

    Refused with one line: bytes that are not UTF-8, invalid YAML, nesting deeper than
    `MAX_DEPTH`, and more than `MAX_VALUES` values once aliases are expanded.
    """
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise SweepError(str(source), None, f"cannot be read: {exc.strerror}") from None
    try:
        text = utf8(raw)
    except ValueError as exc:
        raise SweepError(str(source), None, str(exc)) from None
    deep = SweepError(str(source), None, f"nests mappings or lists more than {MAX_DEPTH} deep")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        lines: dict[tuple[str, ...], int] = {}
        if node is not None and _walk(node, (), lines, {}, 0) > MAX_VALUES:
            raise SweepError(
                str(source), None, f"expands to more than {MAX_VALUES} values (through YAML aliases)"
            )
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else str(source)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line, always
        raise SweepError(where, None, f"is not valid YAML: {problem}") from None
    except (_TooDeep, RecursionError):
        raise deep from None
    return data, lines


def _check_vary(
    c: _Checker, vary: dict[str, Any]
) -> tuple[dict[str, list[Any]], list[dict[str, Any]], dict[str, Any] | None]:
    grid = c.mapping(vary.get("grid", {}), ("vary", "grid"))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise c.fail(("vary", "grid", key), f"must be a non-empty list of values, got {values!r}")
    explicit = vary.get("list", [])
    if not isinstance(explicit, list) or not all(isinstance(x, dict) for x in explicit):
        raise c.fail(("vary", "list"), "must be a list of parameter mappings")
    if "list" in vary and not explicit:
        raise c.fail(("vary", "list"), "is empty")
    random = vary.get("random")
    if random is not None:
        c.mapping(random, ("vary", "random"), RANDOM_KEYS)
        c.integer(random.get("samples"), ("vary", "random", "samples"), 1)
        c.integer(random.get("seed", 0), ("vary", "random", "seed"), 0)
        space = c.mapping(random.get("space"), ("vary", "random", "space"))
        if not space:
            raise c.fail(("vary", "random", "space"), "is empty")
        for key, dist in space.items():
            path = ("vary", "random", "space", key)
            c.mapping(dist, path, DISTRIBUTIONS)
            if len(dist) != 1:
                raise c.fail(path, f"must name exactly one of {', '.join(sorted(DISTRIBUTIONS))}")
            kind, arg = next(iter(dist.items()))
            if not isinstance(arg, list) or not arg or (kind != "choice" and len(arg) != 2):
                raise c.fail(
                    (*path, kind), "must be [low, high]" if kind != "choice" else "must be a non-empty list"
                )
    return grid, explicit, random


_SLURM_STRINGS = (
    "partition",
    "account",
    "qos",
    "walltime",
    "gres",
    "worker_init",
    "scheduler_options",
    "address",
)
_SLURM_INTS = {
    "nodes": 1,
    "signal_seconds": 1,
    "throttle": 1,
    "cores_per_node": 1,
    "mem_per_node": 1,
    "gpus_per_task": 1,
}


# What reaches an ``#SBATCH`` line: ``--flag`` or ``--flag=value``, never whitespace, quotes or
# shell punctuation (the sbatch script checks again when it renders).
_SBATCH_OPTION = re.compile(r"--[A-Za-z][A-Za-z0-9-]*(=[^\s'\"`$;|&<>\\]+)?")
_SBATCH_VALUE = re.compile(r"[^\s'\"`$;|&<>\\]+")
_DIRECTIVE_STRINGS = ("partition", "account", "qos", "walltime", "gres")


def _check_slurm(
    c: _Checker, slurm: dict[str, Any], path: tuple[str, ...] = ("executor", "slurm")
) -> dict[str, Any]:
    for key in _SLURM_STRINGS:
        if key in slurm and not isinstance(slurm[key], str):
            raise c.fail((*path, key), f"must be a string, got {slurm[key]!r}")
        if key in slurm and key in _DIRECTIVE_STRINGS and not _SBATCH_VALUE.fullmatch(slurm[key]):
            raise c.fail(
                (*path, key), f"must be one word without quotes or shell characters, got {slurm[key]!r}"
            )
    for key, minimum in _SLURM_INTS.items():
        if key in slurm:
            c.integer(slurm[key], (*path, key), minimum)
    for key in ("exclusive", "self_requeue", "requeue"):
        if key in slurm and not isinstance(slurm[key], bool):
            raise c.fail((*path, key), f"must be true or false, got {slurm[key]!r}")
    extra = slurm.get("extra", [])
    if isinstance(extra, str):
        extra = [extra]
    if not isinstance(extra, list) or not all(isinstance(x, str) and x.startswith("--") for x in extra):
        raise c.fail((*path, "extra"), "must be a list of sbatch options such as --cpus-per-task=2")
    for item in extra:
        if not _SBATCH_OPTION.fullmatch(item):
            raise c.fail(
                (*path, "extra"),
                f"{item!r} is not one sbatch option (--name or --name=value, without spaces, "
                "quotes or shell characters)",
            )
    if extra:
        slurm["extra"] = extra
    return slurm


def _check_executor(c: _Checker, raw: Any) -> dict[str, Any]:
    """The ``executor`` block with its defaults; the ``provider`` keys are checked against the
    Parsl provider class of its kind (imported only when a ``provider`` block is given)."""
    executor = dict(c.mapping(raw, ("executor",), EXECUTOR_KEYS))
    kind = executor.setdefault("kind", "local")
    if kind not in EXECUTOR_KINDS:
        raise c.fail(("executor", "kind"), f"must be one of {', '.join(EXECUTOR_KINDS)}, got {kind!r}")
    c.integer(executor.setdefault("max_workers", 2), ("executor", "max_workers"), 1)
    for key, minimum in (("blocks", 1), ("nodes_per_block", 1), ("gpus_per_node", 0)):
        if key in executor:
            c.integer(executor[key], ("executor", key), minimum)
    executor["slurm"] = _check_slurm(
        c, dict(c.mapping(executor.get("slurm", {}), ("executor", "slurm"), SLURM_KEYS))
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
    return executor


def check_slurm_manifest(options: Any, manifest: Path) -> dict[str, Any]:
    """The ``slurm`` options a sweep manifest recorded, checked as the YAML's were; SweepError if not."""
    c = _Checker(manifest, {})
    return _check_slurm(c, dict(c.mapping(options, ("slurm",), SLURM_KEYS)), ("slurm",))


def _check_entry(c: _Checker, data: dict[str, Any]) -> tuple[str | None, list[str] | None]:
    entry, command = data.get("entry"), data.get("command")
    if (entry is None) == (command is None):
        raise c.fail(("entry",), "exactly one of 'entry' (package.module:function) or 'command' is required")
    if entry is not None:
        if not isinstance(entry, str) or not re.match(r"^[\w.]+:[\w.]+$", entry):
            raise c.fail(("entry",), f"must look like package.module:function, got {entry!r}")
        module = entry.split(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise c.fail(("entry",), f"module {module!r} cannot be imported")
    if command is not None:
        if isinstance(command, str):
            command = command.split()
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(x, (str, int, float)) for x in command)
        ):
            raise c.fail(("command",), "must be a non-empty list of strings")
        command = [str(x) for x in command]
        program = command[0]
        if "/" in program:  # relative to the YAML's directory, so the task can run from anywhere
            path = Path(program) if os.path.isabs(program) else c.source.parent / program
            if not os.access(path, os.X_OK):
                raise c.fail(("command",), f"{path} does not exist or is not executable")
            command[0] = str(path.resolve())
        elif shutil.which(program) is None:
            raise c.fail(("command",), f"{program!r} is not on PATH")
    return entry, command


def parse_sweep(source: str | os.PathLike[str]) -> Sweep:
    """Load and validate a sweep YAML; SweepError on the first problem."""
    source = Path(source).resolve()
    data, lines = load_yaml(source)
    c = _Checker(source, lines)
    data = c.mapping(data, (), TOP_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,79}$", name):
        raise c.fail(("name",), f"must be a short safe name (letters, digits, _.=+-), got {name!r}")
    run_root = data.get("run_root", f"runs/{name}")
    if not isinstance(run_root, str) or not run_root:
        raise c.fail(("run_root",), f"must be a path, got {run_root!r}")
    entry, command = _check_entry(c, data)
    params = c.mapping(data.get("params", {}), ("params",))
    grid, explicit, random = _check_vary(c, c.mapping(data.get("vary", {}), ("vary",), VARY_KEYS))
    executor = _check_executor(c, data.get("executor", {}))
    restart = c.mapping(data.get("restart", {}), ("restart",), RESTART_KEYS)
    for key in ("max_failures", "max_preemptions"):
        if key in restart:
            c.integer(restart[key], ("restart", key), 0)
    if "backoff_seconds" in restart:
        c.number(restart["backoff_seconds"], ("restart", "backoff_seconds"))
    demo = data.get("demo")
    if demo is not None:
        c.mapping(demo, ("demo",), DEMO_KEYS)
        for key, minimum in (("preempt_task", 0), ("after_checkpoints", 1), ("signals", 1)):
            c.integer(demo.get(key, minimum), ("demo", key), minimum)
    root = Path(run_root) if os.path.isabs(run_root) else source.parent / run_root
    return Sweep(
        name,
        source,
        root.resolve(),
        entry,
        command,
        dict(params),
        grid,
        list(explicit),
        random,
        executor,
        dict(restart),
        dict(demo) if demo is not None else None,
    )
