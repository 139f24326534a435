"""The sbatch script of one submission: a job array whose elements run the task runner.

Each element reads its line of a list file (``generation<TAB>task_dir``) and
``exec``s ``python -m candle_restart.task TASK_DIR`` with
``CANDLE_RESTART_GENERATION`` set: the runner *is* the batch step, so
``--signal=B:USR1@N`` reaches the training's handler directly.  No
hyperparameter ever appears in the script (they live in ``task.json``), and
every path in it is quoted, so nothing a user typed reaches a shell.

Directives: ``--array=0-(n-1)[%throttle]``, ``--requeue`` (or
``--no-requeue``), ``--signal=B:USR1@signal_seconds`` (none when it is 0), ``--open-mode=append``
(a rerun must not truncate the log), ``--exclude`` of the hosts to avoid
(`candle_restart.coordinator.hosts`), and time, partition, account, qos, gres, gpus-per-task and extra lines
from the sweep YAML's ``executor.slurm``.  The output of each element goes
under ``run_root/.slurm/``, named on sbatch's command line (`sbatch_command`),
so a run root whose path has spaces needs no quoting inside ``#SBATCH``; a ``%`` of the path
is doubled there (sbatch reads ``%`` as a file name pattern), and a run root that sbatch or the
list file cannot carry (a backslash, which turns sbatch's patterns off; a tab or newline) is
refused in one line before anything is written (`check_run_root`).  With ``self_requeue: true`` a task
that stopped on the warning signal requeues its own array element after its
checkpoint is committed, so one allocation request carries it to the end.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from candle_restart.executor import REQUEUE, SIGNAL_SECONDS, SlurmOptions
from candle_restart.runtime.envvars import (
    GENERATION_ENV,
    ON_PREEMPT_ENV,
    SLURM_ARRAY_JOB_ID,
    SLURM_ARRAY_TASK_ID,
)
from candle_restart.task.taskdir import TaskDir

_SAFE_DIRECTIVE = re.compile(r"^--[A-Za-z][A-Za-z0-9-]*(=[^\s'\"`$;|&<>\\]+)?$")


def _directive(flag: str, value: object) -> str:
    line = f"--{flag}={value}"
    if not _SAFE_DIRECTIVE.fullmatch(line):
        raise ValueError(f"unsafe sbatch option {line!r}")
    return f"#SBATCH {line}"


def _flag(flag: str) -> str:
    """``#SBATCH --flag`` (no value); ValueError for anything but one option name."""
    if not _SAFE_DIRECTIVE.fullmatch(f"--{flag}") or "=" in flag:
        raise ValueError(f"unsafe sbatch option {'--' + flag!r}")
    return f"#SBATCH --{flag}"


def run_root_problem(run_root: Path) -> str | None:
    """Why a job array cannot run tasks under ``run_root`` (None: it can)."""
    text = str(run_root)
    if "\\" in text:
        return f"{text!r} has a backslash, which makes sbatch write every element's output to one file"
    if "\t" in text or "\n" in text:
        return f"{text!r} has a tab or newline, which the array's list file cannot hold"
    return None


def sbatch_command(script: Path, job_name: str, log_dir: Path) -> list[str]:
    """The ``sbatch`` argv that submits ``script``, each element's output in ``log_dir``
    (its ``%`` doubled: sbatch's file name patterns start with one)."""
    problem = run_root_problem(log_dir)
    if problem:
        raise ValueError(problem)
    pattern = str(log_dir).replace("%", "%%") + f"/{job_name}-%A_%a.out"
    return ["sbatch", "--parsable", f"--output={pattern}", str(script)]


def render(
    job_name: str,
    list_file: Path,
    count: int,
    options: SlurmOptions,
    python: str = sys.executable,
    exclude: Sequence[str] = (),
) -> str:
    """The text of the sbatch script for ``count`` elements listed in ``list_file``; ``exclude``:
    hosts its elements must not run on (``--exclude``; a user's own ``--exclude`` in ``extra``,
    written after it, wins)."""
    array = f"0-{count - 1}" + (f"%{int(options['throttle'])}" if options.get("throttle") else "")
    lines = [
        "#!/bin/bash",
        _directive("job-name", job_name),
        _directive("array", array),
        "#SBATCH --requeue" if options.get("requeue", REQUEUE) else "#SBATCH --no-requeue",
        "#SBATCH --open-mode=append",
    ]
    signal_seconds = int(options.get("signal_seconds", SIGNAL_SECONDS))
    if signal_seconds:  # 0: no warning signal; the training halts before the walltime by itself
        lines.insert(4, _directive("signal", f"B:USR1@{signal_seconds}"))
    for key, flag in (
        ("walltime", "time"),
        ("partition", "partition"),
        ("account", "account"),
        ("qos", "qos"),
        ("gres", "gres"),
        ("nodes", "nodes"),
        ("gpus_per_task", "gpus-per-task"),
    ):
        value = options.get(key)
        if value is not None:
            lines.append(_directive(flag, value))
    if exclude:
        lines.append(_directive("exclude", ",".join(exclude)))
    extra: Sequence[str] = options.get("extra") or []
    for item in [extra] if isinstance(extra, str) else extra:
        flag, _, value = str(item).removeprefix("--").partition("=")
        lines.append(_directive(flag, value) if value else _flag(flag))
    lines += [
        "set -euo pipefail",
        f"IFS=$'\\t' read -r GENERATION TASK_DIR < <(sed -n \"$(({SLURM_ARRAY_TASK_ID} + 1))p\" "
        f"{shlex.quote(str(list_file))})",
        f'export {GENERATION_ENV}="$GENERATION"',
        *(
            [f'export {ON_PREEMPT_ENV}="scontrol requeue ${{{SLURM_ARRAY_JOB_ID}}}_${{{SLURM_ARRAY_TASK_ID}}}"']
            if options.get("self_requeue")
            else []
        ),
        f'exec {shlex.quote(python)} -m candle_restart.task "$TASK_DIR"',
    ]
    return "\n".join(lines) + "\n"


def list_lines(items: Sequence[tuple[TaskDir, int]]) -> str:
    """The list file: one ``generation<TAB>task_dir`` line per array element, in element order."""
    for task, _generation in items:
        if "\n" in str(task.path) or "\t" in str(task.path):
            raise ValueError(f"task path {str(task.path)!r} contains a tab or newline")
    return "".join(f"{generation}\t{task.path}\n" for task, generation in items)
