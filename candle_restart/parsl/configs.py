"""Parsl configurations for each executor kind of a sweep: this machine, or a cluster's scheduler.

`parsl_config` maps a sweep's checked ``executor`` block to a Parsl `Config`:

* ``local``: a HighThroughputExecutor on this machine (the default);
* ``slurm``, ``pbspro``, ``lsf``: a HighThroughputExecutor whose workers run in
  blocks (pilot jobs) submitted through Parsl's ``SlurmProvider``,
  ``PBSProProvider`` or ``LSFProvider``;
* ``flux``: Parsl's ``FluxExecutor``, each task a Flux job, for a sweep run
  inside a Flux instance (its own allocation).

Keys of the ``executor`` block: ``max_workers`` (tasks at a time per node),
``blocks`` (pilot jobs at most), ``nodes_per_block``, ``gpus_per_node`` (one
worker per GPU, each seeing only its own through ``CUDA_VISIBLE_DEVICES``:
HTEX's ``available_accelerators``), ``slurm`` (the options shared with Slurm
job arrays) and ``provider``: keyword arguments for the Parsl provider class
itself, checked against its signature (`check_provider_options`), with
``launcher`` given by name (``srun``, ``mpiexec``, ``aprun``, ``jsrun``, ...).

Paths: Parsl writes its run directory (``run_root/.parsl``) into shell commands without
quotes (the worker pool's ``--cert_dir``, ``--logdir``, the providers' submit scripts).  A run
root whose path has a space or another shell-special character (`shell_unsafe`) is therefore
given to a ``local`` executor through a link without them (`shell_safe_run_dir`: Parsl's files
still land in ``run_root/.parsl``); the cluster kinds, whose workers run on other hosts where
no such link exists, refuse it in one line before anything starts (`check_run_dir`).

Every config uses the coordinator's retry handler
(`candle_restart.parsl.backend.make_retry_handler`), so Parsl's ``retries``
budget counts training errors only: a task that stopped on a signal is rerun
(it resumes from ``ckpts/last``) without spending it, up to the preemption
cap; bad input is never rerun.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
import re
import shlex
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import cast

from parsl import launchers
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.executors.base import ParslExecutor
from parsl.providers import LocalProvider, LSFProvider, PBSProProvider, SlurmProvider
from parsl.providers.base import ExecutionProvider

from candle_restart.coordinator.policy import Policy
from candle_restart.executor import (
    BLOCK_WALLTIME,
    BLOCKS,
    GPUS_PER_NODE,
    KIND,
    MAX_WORKERS,
    NODES_PER_BLOCK,
    ExecutorBlock,
    SlurmOptions,
)
from candle_restart.parsl.backend import make_retry_handler

PROVIDERS: dict[str, type[ExecutionProvider]] = {
    "slurm": SlurmProvider,
    "pbspro": PBSProProvider,
    "lsf": LSFProvider,
    "flux": LocalProvider,  # the Flux instance is the allocation; its blocks run where the sweep runs
}
LAUNCHERS: dict[str, type[launchers.launchers.Launcher]] = {
    "single": launchers.SingleNodeLauncher,
    "simple": launchers.SimpleLauncher,
    "srun": launchers.SrunLauncher,
    "mpiexec": launchers.MpiExecLauncher,
    "mpirun": launchers.MpiRunLauncher,
    "aprun": launchers.AprunLauncher,
    "jsrun": launchers.JsrunLauncher,
}
# Set from the executor block itself (blocks, nodes_per_block, worker_init): not in ``provider``.
_OWNED = {"init_blocks", "min_blocks", "max_blocks", "nodes_per_block", "channel"}


_SHELL_SPECIAL = re.compile(r"[\s'\"\\$`&|;<>()*?\[\]{}#~!]|[^\x20-\U0010ffff]")


def shell_unsafe(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a character a shell would split on or expand (space, quote, ``$``...)."""
    return _SHELL_SPECIAL.search(str(path)) is not None


def check_run_dir(kind: str, run_dir: Path) -> None:
    """RuntimeError (one line) when ``kind``'s workers could not be started from ``run_dir``."""
    if kind != "local" and shell_unsafe(run_dir):
        raise RuntimeError(
            f"executor kind {kind}: the run root {str(run_dir.parent)!r} has a space or shell-special "
            "character in its path, which Parsl's cluster providers put into shell commands unquoted; "
            "move the run root, or use `candle-restart slurm` (job arrays quote every path)"
        )


@contextlib.contextmanager
def shell_safe_run_dir(run_dir: Path) -> Iterator[str]:
    """``run_dir`` itself, or while the context lasts a link to it whose path has no shell-special
    character (in a private temporary folder, removed at the end)."""
    if not shell_unsafe(run_dir):
        yield str(run_dir)
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    base = tempfile.mkdtemp(prefix="candle-restart-parsl-")
    if shell_unsafe(base):  # $TMPDIR has one too
        os.rmdir(base)
        base = tempfile.mkdtemp(prefix="candle-restart-parsl-", dir="/tmp")
    link = os.path.join(base, "run")
    os.symlink(os.path.abspath(run_dir), link)
    try:
        yield link
    finally:
        with contextlib.suppress(OSError):
            os.unlink(link)
            os.rmdir(base)


def check_provider_options(kind: str, options: Mapping[str, object]) -> tuple[str, str] | None:
    """The first problem with ``options`` for ``kind``'s provider as ``(key, problem)``, or None.

    A key must be an argument of the provider class (a "did you mean" names the closest), a
    value must have the type of the argument's default, and ``launcher`` must be a known name.
    """
    if kind not in PROVIDERS:
        return ("provider", f"is only for executor kinds {', '.join(sorted(PROVIDERS))}, not {kind!r}")
    params = {
        name: p
        for name, p in inspect.signature(PROVIDERS[kind].__init__).parameters.items()
        if name != "self" and name not in _OWNED
    }
    for key, value in options.items():
        if key not in params:
            close = difflib.get_close_matches(key, list(params), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(params))}"
            return (key, f"is not an option of Parsl's {PROVIDERS[kind].__name__}{hint}")
        if key == "launcher":
            if value not in LAUNCHERS:
                return (key, f"must be one of {', '.join(sorted(LAUNCHERS))}, got {value!r}")
            continue
        if key == "walltime":
            problem = _walltime_problem(value)
            if problem:
                return (key, problem)
            continue
        default = params[key].default
        if default not in (None, inspect.Parameter.empty) and not _same_type(value, default):
            return (key, f"must be a {type(default).__name__}, got {value!r}")
    return None


def _walltime_problem(value: object) -> str | None:
    """Parsl's providers read walltimes as HH:MM:SS; YAML 1.1 reads an unquoted 2:00:00 as 7200."""
    if isinstance(value, int) and not isinstance(value, bool):
        hours, rest = divmod(value, 3600)
        as_typed = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        return f"YAML read an unquoted time as the number {value}; quote it: '{as_typed}'"
    if not isinstance(value, str) or not re.fullmatch(r"\d+:\d{2}:\d{2}", value):
        return f"must be HH:MM:SS, got {value!r}"
    return None


def _same_type(value: object, default: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _python_on_path() -> str:
    """HTEX starts its interchange by name: this interpreter's bin directory must be on PATH."""
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return f"export PATH={shlex.quote(bin_dir)}:$PATH"


def parsl_config(
    executor: ExecutorBlock,
    run_dir: Path,
    policy: Policy,
    exclude: Sequence[str] = (),
    stop: threading.Event | None = None,
) -> Config:
    """The Parsl Config of a sweep's checked ``executor`` block (see the module docstring);
    ``exclude``: hosts its Slurm blocks avoid (the other kinds' providers cannot exclude hosts);
    while ``stop`` is set, its retry handler reruns nothing (`make_retry_handler`).

    Raises RuntimeError (one line) when the kind needs a command this machine lacks (``flux``).
    """
    kind = executor.get("kind", KIND)
    check_run_dir(kind, run_dir)
    workers = executor.get("max_workers", MAX_WORKERS)
    gpus = executor.get("gpus_per_node", GPUS_PER_NODE)
    if kind == "local":
        return local_config(run_dir, policy, workers, gpus, stop)
    provider = cluster_provider(kind, executor, exclude)
    if kind == "flux":
        return _config(flux_executor(provider, run_dir), run_dir, policy, strategy="none", stop=stop)
    slurm = executor.get("slurm") or SlurmOptions()
    htex = HighThroughputExecutor(
        label=f"candle_{kind}",
        max_workers_per_node=min(workers, gpus) if gpus else workers,
        provider=provider,
        cores_per_worker=1.0 / workers,
        available_accelerators=gpus,
        address=slurm.get("address"),  # where workers reach this host; Parsl guesses when unset
    )
    return _config(htex, run_dir, policy, strategy="simple", stop=stop)


def local_config(
    run_dir: Path,
    policy: Policy,
    max_workers: int = MAX_WORKERS,
    gpus: int = GPUS_PER_NODE,
    stop: threading.Event | None = None,
) -> Config:
    """Tasks run as processes on this machine, ``max_workers`` at a time (one per GPU with ``gpus``)."""
    provider = LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1, worker_init=_python_on_path())
    executor = HighThroughputExecutor(
        label="candle_local",
        max_workers_per_node=min(max_workers, gpus) if gpus else max_workers,
        provider=provider,
        cores_per_worker=1.0 / max_workers,
        available_accelerators=gpus,
        heartbeat_period=5,
        heartbeat_threshold=20,
    )
    return _config(executor, run_dir, policy, strategy="none", stop=stop)


def slurm_config(run_dir: Path, policy: Policy, max_workers: int, slurm: SlurmOptions) -> Config:
    """Blocks of workers submitted as Slurm jobs (keys from the sweep YAML's ``executor.slurm``)."""
    return parsl_config({"kind": "slurm", "max_workers": max_workers, "slurm": slurm}, run_dir, policy)


def cluster_provider(kind: str, executor: ExecutorBlock, exclude: Sequence[str] = ()) -> ExecutionProvider:
    """The Parsl provider of a cluster ``kind``: the executor block's own keys, then ``provider``.

    For ``slurm`` the ``executor.slurm`` options shared with job arrays come first; a key of
    ``provider`` wins over them; ``exclude`` (hosts to avoid) becomes one ``#SBATCH --exclude``
    line after the user's ``scheduler_options``. PBS Pro, LSF and Flux take no exclusion here.
    """
    options: dict[str, object] = {
        "init_blocks": 1,
        "min_blocks": 0,
        "max_blocks": executor.get("blocks", BLOCKS),
        "nodes_per_block": executor.get("nodes_per_block", NODES_PER_BLOCK),
    }
    slurm = executor.get("slurm") or SlurmOptions()
    if kind == "slurm":
        options.update(
            partition=slurm.get("partition"),
            account=slurm.get("account"),
            qos=slurm.get("qos"),
            walltime=slurm.get("walltime", BLOCK_WALLTIME),
            scheduler_options="\n".join(
                line
                for line in (str(slurm.get("scheduler_options", "")), _exclude_line(exclude))
                if line
            ),
            exclusive=bool(slurm.get("exclusive", False)),
            cores_per_node=slurm.get("cores_per_node"),
            mem_per_node=slurm.get("mem_per_node"),
        )
        if "nodes" in slurm and "nodes_per_block" not in executor:
            options["nodes_per_block"] = slurm["nodes"]
    if kind == "flux":
        options.update(init_blocks=1, min_blocks=1, max_blocks=1)
    user: dict[str, object] = dict(executor.get("provider") or {})
    worker_init = "; ".join(
        str(x) for x in (_python_on_path(), slurm.get("worker_init"), user.pop("worker_init", None)) if x
    )
    if "launcher" in user:
        user["launcher"] = LAUNCHERS[str(user["launcher"])]()
    # Every key of ``user`` was checked against the class's signature (`check_provider_options`).
    provider_class = cast(Callable[..., ExecutionProvider], PROVIDERS[kind])
    return provider_class(**{**options, **user, "worker_init": worker_init})


def _exclude_line(hosts: Sequence[str]) -> str:
    """``#SBATCH --exclude=a,b`` for host names Slurm can take (others are dropped), or nothing."""
    safe = [h for h in hosts if re.fullmatch(r"[A-Za-z0-9._-]+", h)]
    return f"#SBATCH --exclude={','.join(safe)}" if safe else ""


def flux_executor(provider: ExecutionProvider, run_dir: Path) -> ParslExecutor:
    """Parsl's FluxExecutor (needs ``flux`` on PATH: run the sweep inside a Flux instance)."""
    from parsl.executors.flux.executor import FluxExecutor

    if shutil.which("flux") is None:
        raise RuntimeError(
            "executor kind flux: no `flux` command on PATH; run the sweep inside a Flux instance"
        )
    return FluxExecutor(provider=provider, working_dir=str(run_dir / "flux"), label="candle_flux")


def _config(
    executor: ParslExecutor, run_dir: Path, policy: Policy, strategy: str, stop: threading.Event | None = None
) -> Config:
    """Parsl's retry budget is the failure budget; the coordinator's handler prices each failure."""
    return Config(
        executors=[executor],
        run_dir=str(run_dir),
        retries=policy.max_failures,
        retry_handler=make_retry_handler(policy, stop),
        strategy=strategy,
    )
