"""A sweep's ``executor`` block: its shape and its defaults, stated once.

The sweep schema (`candle_restart.sweep.schema`) checks the block and fills in `KIND` and
`MAX_WORKERS`; the Parsl configurations (`candle_restart.parsl.configs`) and the sbatch script
of a job array (`candle_restart.slurm.script`) take the other defaults from here for a key the
block leaves out.  It imports only the standard library and `candle_restart.records`, so every
layer may import it.
"""

from __future__ import annotations

from typing import TypedDict

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
