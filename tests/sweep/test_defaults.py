"""Each default has one source: the sweep schema, the Parsl configs, the sbatch script, ``resume``'s
flags and the sweep's ``restart:`` block all read the same table, so they cannot disagree."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from parsl.executors import HighThroughputExecutor
from parsl.providers import SlurmProvider

from candle_restart import executor
from candle_restart.cli import build_parser
from candle_restart.coordinator.policy import BUDGETS, Policy
from candle_restart.parsl.configs import cluster_provider, parsl_config
from candle_restart.slurm.script import render
from candle_restart.sweep import SweepError, parse_sweep
from candle_restart.sweep.run import run_root_policy


def _sweep(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nentry: candle_restart.examples.demo:demo\nparams: {epochs: 1}\n" + extra)
    return path


def test_an_executor_block_left_out_gets_the_same_defaults_from_schema_parsl_and_sbatch(
    tmp_path: Path,
) -> None:
    sweep = parse_sweep(_sweep(tmp_path))
    assert sweep.executor["kind"] == executor.KIND
    assert sweep.executor["max_workers"] == executor.MAX_WORKERS
    from_yaml = parsl_config(sweep.executor, tmp_path / ".parsl", Policy()).executors[0]
    from_nothing = parsl_config({}, tmp_path / ".parsl", Policy()).executors[0]
    assert isinstance(from_yaml, HighThroughputExecutor) and isinstance(from_nothing, HighThroughputExecutor)
    assert from_yaml.max_workers_per_node == from_nothing.max_workers_per_node == executor.MAX_WORKERS
    provider = cluster_provider("slurm", {"kind": "slurm"})
    assert isinstance(provider, SlurmProvider)
    assert provider.walltime == executor.BLOCK_WALLTIME
    assert (provider.max_blocks, provider.nodes_per_block) == (executor.BLOCKS, executor.NODES_PER_BLOCK)
    script = render("job", tmp_path / "list.tsv", 2, {})
    assert f"#SBATCH --signal=B:USR1@{executor.SIGNAL_SECONDS}\n" in script
    assert "#SBATCH --requeue\n" in script


def test_every_restart_budget_is_a_resume_flag_and_a_restart_key(tmp_path: Path) -> None:
    resume = next(
        action.choices["resume"]
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    assert set(BUDGETS) <= {a.dest for a in resume._actions}
    for name in BUDGETS:
        help_text = next(a.help for a in resume._actions if a.dest == name)
        assert f"(default: {getattr(Policy(), name)})" in str(help_text)
    restart = "".join(f"  {name}: 7\n" for name in BUDGETS)
    sweep = parse_sweep(_sweep(tmp_path, f"restart:\n{restart}  backoff_seconds: 5\n"))
    assert sweep.restart == {**dict.fromkeys(BUDGETS, 7), "backoff_seconds": 5}
    policy = run_root_policy(tmp_path, log=lambda _m: None, **sweep.restart)
    assert all(getattr(policy, name) == 7 for name in BUDGETS)
    with pytest.raises(SweepError, match=re.escape("restart.max_failure: unknown key; did you mean 'max_failures'")):
        parse_sweep(_sweep(tmp_path, "restart: {max_failure: 1}\n"))
