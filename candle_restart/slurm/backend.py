"""The Slurm backend: job arrays through ``sbatch``, job states from ``squeue``, ``scontrol`` and ``sacct``.

A submission is one element of a job array, ``JOBID_INDEX``.  Liveness:

* in ``squeue -r`` as PENDING (also after Slurm requeued it itself: a
  preemption with PreemptMode=REQUEUE, or ``scontrol requeue``) -> ``pending``;
  RUNNING, CONFIGURING, COMPLETING, SUSPENDED -> ``running``;
* otherwise its final state comes from ``scontrol show job`` (while Slurm
  still remembers it, MinJobAge) or ``sacct`` (with accounting) -> ``ended``.

`final_state` gives the coordinator what only Slurm knows: a job CANCELLED
by its user stays cancelled.  One ``squeue`` call serves a whole scan
(cached for ``cache_seconds``).  `find` recovers a submission whose outcome
a dead coordinator never journaled, by the array's job name.  `nodes` and `avoid`: the
partition's nodes (``sinfo``) and the hosts the next arrays ``--exclude``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from candle_restart.coordinator.backend import (
    AvoidHosts,
    BatchSubmit,
    FinalState,
    Liveness,
    Reconcile,
    Submission,
)
from candle_restart.coordinator.policy import Policy
from candle_restart.errors import CkptError
from candle_restart.executor import ExecutorBlock, SlurmOptions, check_slurm
from candle_restart.records import manifest
from candle_restart.records.fields import Fields
from candle_restart.records.manifest import ManifestError
from candle_restart.slurm.script import list_lines, render, run_root_problem, sbatch_command
from candle_restart.task.taskdir import TaskDir

ALIVE = {
    "PENDING": "pending",
    "REQUEUED": "pending",
    "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending",
    "RUNNING": "running",
    "CONFIGURING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "running",
    "SIGNALING": "running",
    "RESIZING": "running",
    "STAGE_OUT": "running",
}


class SlurmError(RuntimeError):
    """A Slurm command failed (its stderr is in the message)."""


class SlurmMissing(CkptError):
    """Slurm's commands are not on this machine's PATH (bad input: exit 2, nothing written)."""


SUBMIT_COMMANDS = ("sbatch", "squeue")  # what submitting and watching a job needs


def require_slurm(where: str, key: str | None = "executor.kind", run_root: Path | None = None) -> None:
    """Raise `SlurmMissing` (one line naming ``where`` and ``key``) unless sbatch and squeue are on PATH,
    and (given ``run_root``) unless a job array can run tasks under it (`run_root_problem`)."""
    problem = run_root_problem(run_root) if run_root is not None else None
    if problem:
        raise SlurmMissing(where, "run_root", f"{problem}; choose another run root")
    missing = [name for name in SUBMIT_COMMANDS if shutil.which(name) is None]
    if missing:
        raise SlurmMissing(
            where,
            key,
            f"Slurm needs {' and '.join(SUBMIT_COMMANDS)} on PATH; not found: {', '.join(missing)} "
            "(run on a Slurm login node, or use executor.kind: local)",
        )


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SlurmError(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc.stdout


class SlurmBackend(BatchSubmit, Reconcile, FinalState, AvoidHosts):
    """Submits tasks as job arrays; see the module docstring.  ``options``: the YAML's ``executor.slurm``."""

    name = "slurm"
    # An intent without an outcome is looked up (`find`) once it is this old: sbatch has
    # answered by then, or its coordinator died before journaling the job it made.
    reconcile_grace = 60.0

    def __init__(self, options: SlurmOptions | None = None, cache_seconds: float = 1.0) -> None:
        self.options = options.copy() if options else SlurmOptions()
        self.cache_seconds = cache_seconds
        self._queue: dict[str, str] = {}
        self._queue_time = -1e9
        self.exclude: tuple[str, ...] = ()  # hosts the next submissions avoid (`avoid`)

    # ----- submission -------------------------------------------------------------------------
    def submit(self, task: TaskDir, generation: int) -> Submission:
        return self.submit_many([(task, generation)], batch=f"cr-{os.getpid()}-{time.time_ns()}")[0]

    def submit_many(self, items: Sequence[tuple[TaskDir, int]], batch: str) -> list[Submission]:
        """Submit ``items`` as one job array named ``batch``; one Submission per item, in order."""
        out_dir = items[0][0].path.parent / ".slurm"
        out_dir.mkdir(parents=True, exist_ok=True)
        list_file = out_dir / f"{batch}.tsv"
        list_file.write_text(list_lines(items))
        script = out_dir / f"{batch}.sbatch"
        script.write_text(render(batch, list_file, len(items), self.options, exclude=self.exclude))
        job = _run(sbatch_command(script, batch, out_dir)).strip().split(";")[0]
        (out_dir / f"{batch}.jobid").write_text(job + "\n")
        self._queue_time = -1e9
        return [
            Submission(
                self.name,
                generation,
                {"job_id": f"{job}_{i}", "array_job_id": job, "array_index": i, "batch": batch},
            )
            for i, (_task, generation) in enumerate(items)
        ]

    def find(self, task: TaskDir, generation: int, batch: str | None) -> Submission | None:
        """The submission of ``task`` in array ``batch`` if it was made (its coordinator died before journaling)."""
        if not batch:
            return None
        out_dir = task.path.parent / ".slurm"
        try:
            job = (out_dir / f"{batch}.jobid").read_text().strip()
        except OSError:
            found = _run(["squeue", "-h", "-n", batch, "-o", "%F"]).split()
            if not found:
                return None
            job = found[0]
        lines = (
            (out_dir / f"{batch}.tsv").read_text().splitlines() if (out_dir / f"{batch}.tsv").exists() else []
        )
        for i, line in enumerate(lines):
            gen, _, path = line.partition("\t")
            if path == str(task.path) and gen == str(generation):
                return Submission(
                    self.name,
                    generation,
                    {"job_id": f"{job}_{i}", "array_job_id": job, "array_index": i, "batch": batch},
                )
        return None

    # ----- hosts ------------------------------------------------------------------------------
    def nodes(self) -> list[str] | None:
        """The nodes of the partition the options name (else of the default partition), by
        Slurm's names, from ``sinfo``; None when sinfo does not answer."""
        partition = self.options.get("partition")
        cmd = ["sinfo", "-h", "-N", "-o", "%N|%P", *(["-p", str(partition)] if partition else [])]
        try:
            rows = _run(cmd).splitlines()
        except (SlurmError, OSError, subprocess.SubprocessError):
            return None
        names = {
            node for node, _, part in (row.partition("|") for row in rows) if node and (partition or part.endswith("*"))
        }
        return sorted(names) or None

    def avoid(self, hosts: Sequence[str]) -> None:
        """Every later submission of this object excludes ``hosts`` (``--exclude``)."""
        self.exclude = tuple(sorted(set(hosts)))

    # ----- states -----------------------------------------------------------------------------
    def _squeue(self) -> dict[str, str]:
        if time.monotonic() - self._queue_time > self.cache_seconds:
            rows = _run(["squeue", "-h", "-r", "-o", "%i|%T"]).splitlines()
            self._queue = dict(row.split("|", 1) for row in rows if "|" in row)
            self._queue_time = time.monotonic()
        return self._queue

    def job_state(self, job_id: str) -> str | None:
        """Slurm's state of one job or array element (``12_3``), or None if Slurm no longer knows it."""
        queued = self._squeue().get(job_id)
        if queued:
            return queued
        proc = subprocess.run(
            ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=60
        )
        for field in proc.stdout.split():
            if field.startswith("JobState="):
                return field.split("=", 1)[1]
        proc = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        states = (
            [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
            if proc.returncode == 0
            else []
        )
        return states[-1] if states else None

    def liveness(self, submission: Submission) -> Liveness:
        job_id = str(submission.data.get("job_id", ""))
        state = self.job_state(job_id) if job_id else None
        if state is None:
            return "ended"
        return ALIVE.get(state, "ended")  # type: ignore[return-value]

    def final_state(self, submission: Submission) -> str | None:
        """Slurm's final state (e.g. ``CANCELLED``, ``PREEMPTED``, ``TIMEOUT``) once ended, else None."""
        job_id = str(submission.data.get("job_id", ""))
        state = self.job_state(job_id) if job_id else None
        return None if state is None or state in ALIVE else state


def read_options(run_root: Path) -> SlurmOptions:
    """The ``executor.slurm`` options recorded by the sweep that made ``run_root`` (empty if none),
    checked as the sweep YAML's are (`check_slurm`): a manifest that cannot be read or holds bad
    options raises `ManifestError` (one line naming the manifest and the key)."""
    for path, record in manifest.read_all(run_root):
        if record.slurm is not None:
            check = Fields(path, ManifestError)
            return check_slurm(check, dict(check.obj(record.slurm, "slurm")), ("slurm",))
    return SlurmOptions()


def hosts_to_exclude(
    executor: ExecutorBlock, run_root: Path, policy: Policy, log: Callable[[str], None]
) -> list[str]:
    """The hosts a sweep's Parsl blocks should ``--exclude``, decided at the sweep's start: for the
    ``slurm`` kind the bad-host rule (`candle_restart.coordinator.hostfacts.avoid_bad_hosts`) over
    its partition's nodes; none for the other kinds (their providers cannot exclude hosts)."""
    from candle_restart.coordinator.hostfacts import avoid_bad_hosts
    from candle_restart.coordinator.resume import task_dirs

    if executor.get("kind") != "slurm" or not run_root.is_dir():
        return []
    backend = SlurmBackend(executor.get("slurm") or SlurmOptions())
    return avoid_bad_hosts(run_root, task_dirs(run_root), backend, policy, log)
