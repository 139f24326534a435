"""Parsl's Slurm blocks take the hosts to avoid as one ``#SBATCH --exclude`` line; other providers none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parsl.providers import SlurmProvider

from candle_restart.coordinator.policy import Policy
from candle_restart.parsl.configs import cluster_provider
from candle_restart.slurm.backend import hosts_to_exclude


def _options(executor: Any, exclude: list[str]) -> list[str]:
    provider = cluster_provider("slurm", executor, exclude)
    assert isinstance(provider, SlurmProvider)
    return str(provider.scheduler_options).splitlines()  # Parsl adds its own (--partition)


def test_slurm_blocks_exclude_after_the_users_scheduler_options() -> None:
    executor = {"kind": "slurm", "slurm": {"partition": "gpu", "scheduler_options": "#SBATCH --mem=1G"}}
    assert _options(executor, ["n1", "n7"])[:2] == ["#SBATCH --mem=1G", "#SBATCH --exclude=n1,n7"]
    bare = {"kind": "slurm", "slurm": {"partition": "gpu"}}
    assert "#SBATCH --exclude=n2" in _options(bare, ["bad;name", "n2"])  # an unsafe name is dropped
    assert not any("--exclude" in line for line in _options(bare, []))


def test_a_local_sweep_excludes_nothing_and_says_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    assert hosts_to_exclude({"kind": "local"}, tmp_path, Policy(), said.append) == [] and said == []
