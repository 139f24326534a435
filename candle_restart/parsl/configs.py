"""Parsl configurations: HighThroughputExecutor on this machine (default) or through Slurm.

Both use the coordinator's retry handler (`candle_restart.parsl.backend.retry_handler`),
so Parsl's ``retries`` budget counts training errors only: a task that
stopped on a signal is rerun (it resumes from ``ckpts/last``) without
spending it, up to the preemption cap; bad input is never rerun.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider, SlurmProvider

from candle_restart.coordinator.policy import Policy
from candle_restart.parsl.backend import make_retry_handler


def _python_on_path() -> str:
    """HTEX starts its interchange by name: this interpreter's bin directory must be on PATH."""
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return f"export PATH={shlex.quote(bin_dir)}:$PATH"


def local_config(run_dir: Path, policy: Policy, max_workers: int = 2) -> Config:
    """Tasks run as processes on this machine, ``max_workers`` at a time."""
    provider = LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1, worker_init=_python_on_path())
    executor = HighThroughputExecutor(
        label="candle_local",
        max_workers_per_node=max_workers,
        provider=provider,
        cores_per_worker=1.0 / max_workers,
        heartbeat_period=5,
        heartbeat_threshold=20,
    )
    return _config(executor, run_dir, policy, strategy="none")


def slurm_config(run_dir: Path, policy: Policy, max_workers: int, slurm: dict[str, Any]) -> Config:
    """Blocks of workers submitted as Slurm jobs (keys from the sweep YAML's ``executor.slurm``)."""
    worker_init = "; ".join(x for x in (_python_on_path(), slurm.get("worker_init")) if x)
    provider = SlurmProvider(
        partition=slurm.get("partition"),
        account=slurm.get("account"),
        qos=slurm.get("qos"),
        walltime=str(slurm.get("walltime", "01:00:00")),
        nodes_per_block=int(slurm.get("nodes", 1)),
        init_blocks=1,
        min_blocks=0,
        max_blocks=1,
        worker_init=worker_init,
        scheduler_options=str(slurm.get("scheduler_options", "")),
        exclusive=bool(slurm.get("exclusive", False)),
        cores_per_node=slurm.get("cores_per_node"),
        mem_per_node=slurm.get("mem_per_node"),
    )
    executor = HighThroughputExecutor(
        label="candle_slurm",
        max_workers_per_node=max_workers,
        provider=provider,
        cores_per_worker=1.0 / max_workers,
        address=slurm.get("address"),  # where workers reach this host; Parsl guesses when unset
    )
    return _config(executor, run_dir, policy, strategy="simple")


def _config(executor: HighThroughputExecutor, run_dir: Path, policy: Policy, strategy: str) -> Config:
    """Parsl's retry budget is the failure budget; the coordinator's handler prices each failure."""
    return Config(
        executors=[executor],
        run_dir=str(run_dir),
        retries=policy.max_failures,
        retry_handler=make_retry_handler(policy),
        strategy=strategy,
    )
