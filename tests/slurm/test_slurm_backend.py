"""The Slurm backend against the real local Slurm, each case from submission to final state.

Tasks are the toy trainer (real checkpoints through the core, real signal
handling, no TensorFlow) so each case takes seconds, not minutes.  Waiting is
event-driven: ``sbatch --wait --dependency=afterany:JOB`` for a job's end, and
a FIFO the toy writes "done" to when it completes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from candle_restart.coordinator import Policy, resume, scan
from candle_restart.records.journal import JournalEvent
from candle_restart.slurm import SlurmBackend
from candle_restart.task import TaskDir
from tests.helpers import ROOT, open_progress, runner_env


def _env(slurm_conf: str) -> dict[str, str]:
    return {**runner_env(), "SLURM_CONF": slurm_conf}


def _sweep(tmp_path: Path, name: str, variants: list[dict[str, Any]], **slurm: Any) -> Path:
    config = {
        "name": name,
        "run_root": "runs",
        "entry": "tests.coordinator.toy:run",
        "params": {"epochs": 3},
        "vary": {"list": variants},
        "executor": {"kind": "slurm", "slurm": {"partition": "debug", "walltime": "00:10:00", **slurm}},
        "restart": {"max_failures": 2, "backoff_seconds": 0},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _submit(config: Path, slurm_conf: str, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", "slurm", "submit", str(config), *extra],
        cwd=ROOT,
        env=_env(slurm_conf),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _jobs(run_root: Path) -> list[str]:
    return [
        p.read_text().strip() for p in sorted((run_root / ".slurm").glob("*.jobid"), key=os.path.getmtime)
    ]


def _wait_job(*jobs: str) -> None:
    """Block until one of ``jobs`` (all its array elements) has ended: a dependent no-op job with ``--wait``."""
    subprocess.run(
        [
            "sbatch",
            "--wait",
            "-p",
            "debug",
            "-o",
            "/dev/null",
            "--dependency=" + "?".join(f"afterany:{job}" for job in jobs),
            "--wrap",
            "true",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )


def _states(run_root: Path, backend: SlurmBackend) -> Counter[str]:
    return Counter(s.state for s in scan(run_root, {"slurm": backend}))


def _resume(run_root: Path, backend: SlurmBackend, **policy: Any) -> list[Any]:
    return resume(run_root, backend, Policy(backoff_seconds=0, **policy))


def _wait_done(fifo_fd: int, count: int) -> list[str]:
    lines: list[str] = []
    buffered = b""
    while len(lines) < count:
        buffered += os.read(fifo_fd, 4096)
        *done, buffered = buffered.split(b"\n")
        lines += [d.decode() for d in done]
    return lines


def _starts(task: TaskDir) -> list[JournalEvent]:
    return [e for e in task.events() if e.kind == "start"]


def test_array_with_five_preempted_elements_is_resubmitted_as_one_array_of_those_five(
    tmp_path: Path, slurm_conf: str
) -> None:
    variants = [{"index": i, "preempt_at": 1 if i % 4 == 0 else 0} for i in range(20)]
    config = _sweep(tmp_path, "arr", variants)
    run_root = tmp_path / "runs"
    _submit(config, slurm_conf)
    [first] = _jobs(run_root)
    _wait_job(first)
    backend = SlurmBackend()
    assert _states(run_root, backend) == {"completed": 15, "preempted": 5}
    outcomes = _resume(run_root, backend)
    assert sum(o.acted for o in outcomes) == 5
    jobs = _jobs(run_root)
    assert len(jobs) == 2
    batch = sorted((run_root / ".slurm").glob("*.tsv"), key=os.path.getmtime)[-1]
    resubmitted = {Path(line.split("\t")[1]).name for line in batch.read_text().splitlines()}
    preempted = {o.status.task_id for o in outcomes if o.acted}
    assert resubmitted == preempted and len(resubmitted) == 5
    _wait_job(jobs[1])
    assert _states(run_root, backend) == {"completed": 20}
    for task_dir in run_root.glob("arr-*"):
        task = TaskDir(task_dir)
        events = [e.kind for e in task.events() if e.kind in ("start", "exit")]
        assert events == ["start", "exit"] * (len(events) // 2)
        assert all(s.job_id for s in _starts(task))


def test_training_error_is_retried_within_the_budget_then_given_up(tmp_path: Path, slurm_conf: str) -> None:
    base = tmp_path / "my sweeps"  # a space in the run root's path reaches sbatch unharmed
    base.mkdir()
    run_root = base / "runs"
    _submit(_sweep(base, "err", [{"fail_at": 1}]), slurm_conf)
    backend = SlurmBackend()
    _wait_job(_jobs(run_root)[-1])
    [outcome] = _resume(run_root, backend, max_failures=2)
    assert outcome.decision.action == "submit"
    _wait_job(_jobs(run_root)[-1])
    [outcome] = _resume(run_root, backend, max_failures=2)
    assert outcome.decision.action == "give_up" and outcome.status.failures == 2
    assert "RuntimeError: boom" in outcome.status.reason


def test_scancel_by_the_user_is_cancelled_and_not_resubmitted(tmp_path: Path, slurm_conf: str) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    run_root = tmp_path / "runs"
    _submit(_sweep(tmp_path, "cancel", [{"hold_fifo": str(gate), "await_signal": 120, "epochs": 5}]), slurm_conf)
    [job] = _jobs(run_root)
    writer = open(gate, "w")  # noqa: SIM115 - returns once the task is training inside its Slurm job
    subprocess.run(["scancel", job], check=True)
    writer.close()  # the toy waits for the TERM scancel sent, then stops at its next epoch end
    _wait_job(job)
    backend = SlurmBackend()
    [status] = scan(run_root, {"slurm": backend})
    assert status.state == "cancelled" and "CANCELLED" in status.reason
    [outcome] = _resume(run_root, backend)
    assert not outcome.acted and len(_jobs(run_root)) == 1
    [again] = _resume(run_root, backend, include_cancelled=True)
    assert again.acted


@pytest.mark.parametrize("requeue", [True, False])
def test_preemption_by_a_higher_priority_partition(tmp_path: Path, slurm_conf: str, requeue: bool) -> None:
    """REQUEUE: Slurm requeues the job and the coordinator never submits it again.
    --no-requeue: the job ends PREEMPTED and the coordinator resubmits it once from ckpts/last."""
    gate, done = tmp_path / "gate", tmp_path / "done"
    os.mkfifo(gate)
    done_fd = open_progress(done)  # held open for reading before the task can write to it
    run_root = tmp_path / "runs"
    variants = [
        {"hold_fifo": str(gate), "await_signal": 120, "done_fifo": str(done), "epochs": 6, "epoch_seconds": 0.5}
    ]
    _submit(
        _sweep(tmp_path, "pre", variants, extra=["--cpus-per-task=2"]),
        slurm_conf,
        *([] if requeue else ["--no-requeue"]),
    )
    [job] = _jobs(run_root)
    with open(gate, "w") as writer:  # the task is training, holding both CPUs
        writer.write("go\n")
    high = subprocess.run(
        ["sbatch", "--wait", "-p", "high", "-c", "1", "-o", "/dev/null", "--wrap", "sleep 2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert high.returncode == 0, high.stderr
    backend = SlurmBackend()
    task = TaskDir(next(run_root.glob("pre-*")))
    if requeue:
        [outcome] = _resume(run_root, backend)  # the job is pending again: hands off
        assert not outcome.acted and outcome.status.state in ("queued", "running")
    else:
        _wait_job(job)
        [outcome] = _resume(run_root, backend)
        assert outcome.acted and outcome.status.state == "preempted"
    [line] = _wait_done(done_fd, 1)
    os.close(done_fd)
    _wait_job(_jobs(run_root)[-1])  # the runner records its exit after the toy said done
    assert _states(run_root, backend) == {"completed": 1}
    intents = [e for e in task.events() if e.kind == "submit_intent"]
    assert len(intents) == (1 if requeue else 2)
    starts = _starts(task)
    assert len(starts) == 2
    if requeue:
        assert starts[1].extras.get("restart_count") == "1" and line == f"done {starts[1].job_id}"


def _drive(epochs: dict[Path, int]) -> None:
    """Resume each sweep (run root: its epochs) when its job ends preempted, until all completed.

    Waits for whichever job ends first (``afterany:A?afterany:B``), so the sweeps run side by side.
    """
    pending = dict(epochs)
    for _ in range(8):
        if not pending:
            return
        _wait_job(*(_jobs(root)[-1] for root in pending))
        backend = SlurmBackend()
        for root in list(pending):
            [status] = scan(root, {"slurm": backend})
            if status.state == "completed":
                del pending[root]
            elif status.state not in ("queued", "running"):
                assert status.state == "preempted" and status.epoch and status.epoch < pending[root], status
                [outcome] = _resume(root, backend)
                assert outcome.acted
    raise AssertionError(f"not completed: {sorted(map(str, pending))}")


def test_walltime_with_and_without_a_warning_signal_ends_with_a_checkpoint_and_is_resubmitted(
    tmp_path: Path, slurm_conf: str
) -> None:
    """Two sweeps at once (so the pair costs what one does): a 2-minute job with ``--signal``, and
    a 1-minute job with none, which halts itself before the walltime (the callback's own clock)."""
    (tmp_path / "sig").mkdir()
    (tmp_path / "nosig").mkdir()
    done = tmp_path / "done"
    done_fd = open_progress(done)  # held open for reading before the task can write to it
    signalled, unsignalled = tmp_path / "sig" / "runs", tmp_path / "nosig" / "runs"
    # USR1 is due 60 s before the 2-minute limit; slurmctld checks every 30 s, so it comes 30-60 s in.
    # ckpt_halt_seconds=5: the halt before the walltime (~113 s in) cannot come before the signal.
    variants = [{"done_fifo": str(done), "epochs": 90, "epoch_seconds": 1, "ckpt_halt_seconds": 5}]
    _submit(_sweep(tmp_path / "sig", "tmo", variants, walltime="00:02:00", signal_seconds=60), slurm_conf)
    # No --signal at all: only the training's own clock (from squeue: no SLURM_JOB_END_TIME in 22.05)
    # can save it; it halts ~10 s + 3 slowest commits + 1 epoch before the limit, ~48 epochs in.
    quiet = [{"epochs": 55, "epoch_seconds": 1, "ckpt_halt_seconds": 10, "log": True}]
    _submit(_sweep(tmp_path / "nosig", "wall", quiet, walltime="00:01:00", signal_seconds=0), slurm_conf)
    _drive({unsignalled: 55, signalled: 90})
    backend = SlurmBackend()

    task = TaskDir(next(unsignalled.glob("wall-*")))
    exits = [e for e in task.events() if e.kind == "exit"]
    assert [e.exit_code for e in exits] == [75, 0]
    assert exits[0].cause == "timeout" and "walltime" in (exits[0].reason or ""), exits[0]
    final, _ = task.load_state()
    assert exits[1].cause is None and final is not None and final.cause is None
    first = _starts(task)[0].job_id
    ended = backend.job_state(str(first))
    assert ended is not None and ended != "TIMEOUT", ended  # it ended itself (exit 75) before the limit
    log = (task.ckpts / "ckpt.log").read_text()
    assert "walltime: allocation ends at" in log
    assert "(from squeue)" in log or "(from SLURM_JOB_END_TIME)" in log  # the scheduler's end, not a guess
    halted = [line for line in log.splitlines() if "walltime: halting now" in line]
    assert len(halted) == 1 and "slowest commit" in halted[0]
    resumed = [line for line in log.splitlines() if "restarting from epoch:" in line]
    assert len(resumed) == 1 and 0 < int(resumed[0].split(":")[-1]) < 55
    statuses = {st.task_id: st for st in scan(unsignalled, {"slurm": backend})}
    assert statuses[task.task_id].causes == {"timeout": 1}  # what the coordinator counts against max_timeouts

    task = TaskDir(next(signalled.glob("tmo-*")))
    _wait_done(done_fd, 1)
    os.close(done_fd)
    exits = [e for e in task.events() if e.kind == "exit"]
    assert exits[0].exit_code == 75 and "SIGUSR1" in (exits[0].reason or "")
    assert exits[0].cause == "preempted"
    [status] = scan(signalled, {"slurm": backend})
    assert status.causes == {"preempted": 1}
    assert exits[-1].exit_code == 0


def test_self_requeue_on_the_warning_signal_carries_the_task_to_its_end(
    tmp_path: Path, slurm_conf: str
) -> None:
    gate, done = tmp_path / "gate", tmp_path / "done"
    os.mkfifo(gate)
    done_fd = open_progress(done)  # held open for reading before the task can write to it
    run_root = tmp_path / "runs"
    variants = [
        {"hold_fifo": str(gate), "await_signal": 120, "done_fifo": str(done), "epochs": 4, "epoch_seconds": 0.3}
    ]
    _submit(_sweep(tmp_path, "selfrq", variants, self_requeue=True), slurm_conf)
    [job] = _jobs(run_root)
    with open(gate, "w") as writer:
        writer.write("go\n")
    # The walltime warning (--signal=B:USR1@N), sent by hand so the test does not wait for the limit.
    subprocess.run(["scancel", "--signal=USR1", "--batch", f"{job}_0"], check=True, timeout=60)
    _wait_done(done_fd, 1)
    os.close(done_fd)
    _wait_job(job)
    task = TaskDir(next(run_root.glob("selfrq-*")))
    events = task.events()
    assert [e.exit_code for e in events if e.kind == "on_preempt"] == [0]
    assert sum(e.kind == "submit_intent" for e in events) == 1  # Slurm reran it; nobody resubmitted
    starts = _starts(task)
    assert len(starts) == 2 and starts[1].extras.get("restart_count") == "1"
    assert _states(run_root, SlurmBackend()) == {"completed": 1}


def test_a_run_root_with_shell_special_characters_is_preempted_and_resumed(tmp_path: Path, slurm_conf: str) -> None:
    base = tmp_path / "my proj $HOME 'q' `id` ;x 100%j"  # quoted in the script; % doubled for --output (%j is the job id)
    base.mkdir()
    run_root = base / "runs"
    _submit(_sweep(base, "odd", [{"preempt_at": 1}]), slurm_conf)
    backend = SlurmBackend()
    _wait_job(_jobs(run_root)[-1])
    [outcome] = _resume(run_root, backend)
    assert outcome.status.state == "preempted" and outcome.decision.action == "submit", outcome
    _wait_job(_jobs(run_root)[-1])
    assert _states(run_root, backend) == {"completed": 1}
    outputs = sorted(p.name for p in (run_root / ".slurm").glob("*.out"))
    jobs = _jobs(run_root)
    assert len(outputs) == 2 and all(any(f"-{job}_0.out" in name for name in outputs) for job in jobs), outputs
    task = TaskDir(next(run_root.glob("odd-*")))
    assert [e.status for e in task.events() if e.kind == "exit"] == ["preempted", "completed"]
