"""A sweep's ``executor`` block: its shape and its defaults, stated once.

The sweep schema (`candle_restart.sweep.schema`) checks the block and fills in `KIND` and
`MAX_WORKERS`; the Parsl configurations (`candle_restart.parsl.configs`) and the sbatch script
of a job array (`candle_restart.slurm.script`) take the other defaults from here for a key the
block leaves out.  `check_slurm` is the one check of a ``slurm`` block: the YAML's, and the one
a sweep manifest recorded for the Slurm backend.  It imports only the standard library and
`candle_restart.records`, so every layer may import it.
"""

from __future__ import annotations

import re
from typing import Protocol, TypedDict, cast

from candle_restart.records.jsontypes import JsonValue

KINDS = ("local", "slurm", "pbspro", "lsf", "flux")
KIND = "local"  # tasks run as processes on this machine
MAX_WORKERS = 2  # tasks at a time per node
BLOCKS = 1  # pilot jobs at most (the cluster kinds)
NODES_PER_BLOCK = 1
GPUS_PER_NODE = 0  # 0: no GPU pinning
BLOCK_WALLTIME = "01:00:00"  # a Parsl pilot job's on Slurm when ``slurm.walltime`` is unset
SIGNAL_SECONDS = 120  # a job array element's ``--signal=B:USR1@N``; 0: none
REQUEUE = True  # a job array is submitted with ``--requeue``


class SlurmOptions(TypedDict, total=False):
    """``executor.slurm``: the options a job array and a Parsl Slurm block share."""

    partition: str
    account: str
    qos: str
    walltime: str
    nodes: int
    worker_init: str
    scheduler_options: str
    gres: str
    signal_seconds: int
    throttle: int
    extra: list[str]
    exclusive: bool
    cores_per_node: int
    mem_per_node: int
    address: str
    self_requeue: bool
    requeue: bool
    gpus_per_task: int


class ExecutorBlock(TypedDict, total=False):
    """The ``executor`` block; ``provider``: keyword arguments of the Parsl provider class."""

    kind: str
    max_workers: int
    blocks: int
    nodes_per_block: int
    gpus_per_node: int
    slurm: SlurmOptions
    provider: dict[str, JsonValue]


SLURM_KEYS = SlurmOptions.__optional_keys__
EXECUTOR_KEYS = ExecutorBlock.__optional_keys__

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
    "signal_seconds": 0,  # 0: no --signal
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


class Checks(Protocol):
    """The value checks `check_slurm` needs: the sweep YAML's (which name its lines) and the
    records' `candle_restart.records.fields.Fields` (a manifest) both have them."""

    def fail(self, path: tuple[str, ...], problem: str) -> Exception: ...

    def string(self, value: object, path: tuple[str, ...]) -> str: ...

    def integer(self, value: object, path: tuple[str, ...], minimum: int) -> int: ...


def check_slurm(c: Checks, slurm: dict[str, object], path: tuple[str, ...]) -> SlurmOptions:
    """``slurm`` (a copy the caller made) checked key by key, typed as `SlurmOptions`; the first
    problem is ``c.fail`` of its key under ``path``.  The sweep YAML's ``executor.slurm`` and a
    sweep manifest's ``slurm`` (the Slurm backend's options) are checked by this one rule."""
    for key in slurm:
        if key not in SLURM_KEYS:
            raise c.fail((*path, key), f"unknown key (expected one of {', '.join(sorted(SLURM_KEYS))})")
    for key in _SLURM_STRINGS:
        if key in slurm:
            text = c.string(slurm[key], (*path, key))
            if key in _DIRECTIVE_STRINGS and not _SBATCH_VALUE.fullmatch(text):
                raise c.fail(
                    (*path, key), f"must be one word without quotes or shell characters, got {text!r}"
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
    return cast(SlurmOptions, slurm)  # every key of SLURM_KEYS checked above for its type
