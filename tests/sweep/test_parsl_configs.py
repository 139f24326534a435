"""The Parsl configuration of each executor kind, against golden files.

PBS Pro, LSF and Flux cannot run on this machine, so their configurations are
checked as what we hand to Parsl (the provider and executor with every
argument, golden JSON) and, for the batch schedulers, as the job script
Parsl's own provider writes, captured by FAKE ``qsub``/``bsub``/``sbatch``
(and a fake ``flux``) on ``PATH`` that save the script and print a job id.
Regenerate after an intended change with ``CANDLE_RESTART_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from candle_restart.coordinator.policy import Policy
from candle_restart.executor import ExecutorBlock
from candle_restart.parsl.configs import cluster_provider, parsl_config
from candle_restart.sweep import SweepError, parse_sweep
from tests.helpers import check_golden

GOLDEN = Path(__file__).parent / "golden"

EXECUTORS: dict[str, ExecutorBlock] = {
    "local": {"kind": "local", "max_workers": 4, "gpus_per_node": 2},
    "slurm": {
        "kind": "slurm",
        "max_workers": 4,
        "blocks": 2,
        "gpus_per_node": 4,
        "slurm": {"partition": "gpu", "account": "candle", "walltime": "02:00:00", "exclusive": True},
        "provider": {"launcher": "srun", "constraint": "a100"},
    },
    "pbspro": {  # a Polaris-like node: 4 GPUs, one worker each
        "kind": "pbspro",
        "max_workers": 4,
        "nodes_per_block": 2,
        "gpus_per_node": 4,
        "provider": {
            "account": "CANDLE_aesp",
            "queue": "prod",
            "walltime": "01:00:00",
            "select_options": ":ngpus=4",
            "scheduler_options": "#PBS -l filesystems=home:eagle",
            "cpus_per_node": 64,
            "launcher": "mpiexec",
        },
    },
    "lsf": {
        "kind": "lsf",
        "max_workers": 6,
        "gpus_per_node": 6,
        "provider": {"project": "MED106", "queue": "batch", "walltime": "00:30:00", "launcher": "jsrun"},
    },
    "flux": {"kind": "flux", "max_workers": 2},
}


@pytest.fixture
def fake_schedulers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """FAKE qsub/bsub/sbatch/flux: each saves the script it is given and prints a job id."""
    bin_dir, saved = tmp_path / "fake-bin", tmp_path / "submitted"
    bin_dir.mkdir()
    saved.mkdir()
    answers = {
        "qsub": "4242.polaris-pbs-01",
        "bsub": "Job <4242> is submitted to queue <batch>.",
        "sbatch": "Submitted batch job 4242",
    }
    for name, answer in answers.items():
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nfor a; do f="$a"; done\ncp "$f" "{saved}/{name}"\necho "{answer}"\n')
        script.chmod(0o755)
    (bin_dir / "flux").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "flux").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield saved


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return type(value).__name__  # a launcher, a channel: its class is what the config chose


def _describe(obj: Any, names: list[str]) -> dict[str, Any]:
    return {"class": type(obj).__name__, **{n: _plain(getattr(obj, n, None)) for n in names}}


def describe(config: Any) -> dict[str, Any]:
    """What a Config hands Parsl, minus machine-specific values (paths, PATH, addresses)."""
    executor = config.executors[0]
    provider = executor.provider
    import inspect

    provider_args = [n for n in inspect.signature(type(provider).__init__).parameters if n != "self"]
    out = {
        "executor": _describe(
            executor, ["label", "max_workers_per_node", "cores_per_worker", "available_accelerators"]
        ),
        "provider": _describe(provider, provider_args),
        "retries": config.retries,
        "strategy": config.strategy,
    }
    init = out["provider"].get("worker_init", "")
    out["provider"]["worker_init"] = re.sub(r"export PATH=\S+:\$PATH", "export PATH=<venv>/bin:$PATH", init)
    return out


def _golden(name: str, text: str) -> None:
    check_golden(GOLDEN, name, text)


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_config_of_each_kind_matches_its_golden_file(
    kind: str, tmp_path: Path, fake_schedulers: Path
) -> None:
    config = parsl_config(EXECUTORS[kind], tmp_path / ".parsl", Policy(max_failures=3))
    _golden(f"parsl-{kind}.json", json.dumps(describe(config), indent=2, sort_keys=True) + "\n")
    if kind == "flux":  # never started: drop the FluxExecutor's exit hook, which joins its thread
        executor = config.executors[0]
        for hook in [f for f in weakref.finalize._registry if (f.peek() or [None])[0] is executor]:  # type: ignore[attr-defined]
            hook.detach()


@pytest.mark.parametrize("kind", ["slurm", "pbspro", "lsf"])
def test_block_job_script_of_each_scheduler_matches_its_golden_file(
    kind: str, tmp_path: Path, fake_schedulers: Path
) -> None:
    provider = cluster_provider(kind, EXECUTORS[kind])
    provider.script_dir = str(tmp_path / "scripts")
    os.makedirs(provider.script_dir)
    job = provider.submit("process_worker_pool.py --PLACEHOLDER", 1, "candle.block")
    assert job == "4242" or job == "4242.polaris-pbs-01"
    tool = {"slurm": "sbatch", "pbspro": "qsub", "lsf": "bsub"}[kind]
    script = (fake_schedulers / tool).read_text().replace(str(tmp_path), "<run>")
    script = re.sub(r"export PATH=\S+:\$PATH", "export PATH=<venv>/bin:$PATH", script)
    script = re.sub(r"candle\.block\.\d+\.\d+", "candle.block.<time>", script)  # Parsl adds the time
    _golden(f"block-{kind}.sh", script)


def _sweep_yaml(tmp_path: Path, executor: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nentry: candle_restart.examples.demo:demo\nparams: {epochs: 1}\n"
        + textwrap.dedent(executor)
    )
    return path


@pytest.mark.parametrize(
    "executor, where, problem",
    [
        ("executor: {kind: pbs}\n", "executor.kind", "must be one of local, slurm, pbspro, lsf, flux"),
        (
            "executor: {kind: pbspro, provider: {qeue: prod}}\n",
            "executor.provider.qeue",
            "not an option of Parsl's PBSProProvider; did you mean 'queue'?",
        ),
        (
            "executor: {kind: slurm, provider: {exclusive: 'yes'}}\n",
            "executor.provider.exclusive",
            "must be a bool, got 'yes'",
        ),
        (
            "executor: {kind: lsf, provider: {walltime: 2:00:00}}\n",
            "executor.provider.walltime",
            "YAML read an unquoted time as the number 7200; quote it: '2:00:00'",
        ),
        (
            "executor: {kind: lsf, provider: {walltime: '2 hours'}}\n",
            "executor.provider.walltime",
            "must be HH:MM:SS",
        ),
        (
            "executor: {kind: pbspro, provider: {cpus_per_node: many}}\n",
            "executor.provider.cpus_per_node",
            "must be a int, got 'many'",
        ),
        (
            "executor: {kind: slurm, provider: {launcher: srn}}\n",
            "executor.provider.launcher",
            "must be one of",
        ),
        ("executor: {kind: local, provider: {queue: q}}\n", "executor.provider", "only for executor kinds"),
        ("executor: {kind: slurm, gpus_per_node: -1}\n", "executor.gpus_per_node", "integer >= 0"),
    ],
)
def test_a_bad_executor_block_is_one_line_naming_the_key(
    tmp_path: Path, executor: str, where: str, problem: str
) -> None:
    path = _sweep_yaml(tmp_path, executor)
    with pytest.raises(SweepError) as info:
        parse_sweep(path)
    message = str(info.value)
    assert "\n" not in message and where in message and problem in message and str(path) in message


def test_one_worker_per_gpu_each_sees_only_its_own(tmp_path: Path) -> None:
    """A real local HTEX with ``gpus_per_node: 2``: two tasks at once, CUDA_VISIBLE_DEVICES 0 and 1."""
    script = textwrap.dedent(
        f"""
        import os, sys, parsl
        from pathlib import Path
        from parsl import python_app
        from candle_restart.coordinator.policy import Policy
        from candle_restart.parsl.configs import parsl_config

        @python_app
        def visible(barrier):
            import os, time
            from pathlib import Path
            Path(barrier, os.environ["CUDA_VISIBLE_DEVICES"]).touch()
            while len(list(Path(barrier).iterdir())) < 2:  # both run at once, on two workers
                time.sleep(0.05)
            return os.environ["CUDA_VISIBLE_DEVICES"]

        barrier = Path({str(tmp_path / "barrier")!r}); barrier.mkdir()
        config = parsl_config({{"kind": "local", "max_workers": 4, "gpus_per_node": 2}},
                              Path({str(tmp_path / "parsl")!r}), Policy())
        with parsl.load(config):
            print(sorted(f.result(timeout=120) for f in [visible(str(barrier)), visible(str(barrier))]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "['0', '1']"
