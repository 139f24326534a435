"""The PyTorch example sweep (``configs/torch-sweep.yaml``) submitted to the real local Slurm, run by
the torch environment's python: the job's warning signal (USR1, sent with ``scancel --signal``)
lands inside an epoch, the training commits a mid-epoch checkpoint and exits 75, the task requeues
its own array element (``self_requeue``), and Slurm's rerun resumes it at the next batch and ends
bit for bit where an uninterrupted run does; ``status`` and ``results`` show it like a Keras task.

Marked ``backends``: ``make test-backends`` runs it in the torch venv (skipped where torch is not
installed, like every PyTorch test; without Slurm it skips, or fails under
``CANDLE_RESTART_REQUIRE_SLURM=1``, through the ``slurm_conf`` fixture).  The training is in
lockstep with the test (the example's ``progress_fifo`` hook): held inside epoch 2, told a signal
is coming, it waits for it there, so the signal lands at that batch whatever Slurm's delivery takes.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")

from candle_restart.records.jsontypes import JsonObject
from candle_restart.task import TaskDir
from tests.helpers import HANG, ROOT, open_progress, runner_env

pytestmark = pytest.mark.backends

SAMPLES, BATCH = 1024, 32
BATCHES = SAMPLES * 3 // 4 // BATCH  # per epoch (the example trains on 3/4 of the samples)


class _Lockstep:
    """The test's end of the example's ``progress_fifo`` hook: lines read, go-ahead bytes written."""

    def __init__(self, reader: int, writer: int) -> None:
        self.reader, self.writer, self.seen, self._buffered = reader, writer, 0, b""

    def poll(self, timeout: float) -> int:
        """Read the batch ends reported within ``timeout`` seconds; return how many."""
        ready, _, _ = select.select([self.reader], [], [], timeout)
        if not ready:
            return 0
        self._buffered += os.read(self.reader, 4096)
        *lines, self._buffered = self._buffered.split(b"\n")
        self.seen += len(lines)
        return len(lines)


def _exits(task: TaskDir) -> list[JsonObject]:
    return (
        [e for e in [e.to_json() for e in task.events()] if e.get("event") == "exit"]
        if task.journal_file.exists()
        else []
    )


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "candle_restart.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG)


def test_the_pytorch_sweep_on_slurm_is_signalled_requeued_and_resumed(
    tmp_path: Path, slurm_conf: str
) -> None:
    from candle_restart.examples.torch_regression import run

    env = {**runner_env(), "SLURM_CONF": slurm_conf}
    fifo, ack = tmp_path / "progress", tmp_path / "progress.ack"
    reader = open_progress(fifo)  # the example reports progress only while someone reads
    os.mkfifo(ack)
    lockstep = _Lockstep(reader, os.open(ack, os.O_RDWR))
    config = yaml.safe_load((ROOT / "configs" / "torch-sweep.yaml").read_text())
    config.pop("demo")  # the sweep driver's signal; here Slurm sends it
    config["run_root"] = "runs"
    config["params"].update({"epochs": 3, "samples": SAMPLES, "batch_size": BATCH})
    rate = config.pop("vary")["grid"]["learning_rate"][0]
    config["vary"] = {"list": [{"learning_rate": rate, "progress_fifo": str(fifo)}]}
    config["executor"] = {
        "kind": "slurm",
        "slurm": {"partition": "debug", "walltime": "00:10:00", "self_requeue": True},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    os.write(lockstep.writer, b"." * (BATCHES + 3))  # epoch 1 (its checkpoint) and 3 batches of epoch 2
    submit = _cli("slurm", "submit", str(tmp_path / "sweep.yaml"), env=env)
    assert submit.returncode == 0, submit.stdout + submit.stderr
    run_root = tmp_path / "runs"
    [script] = (run_root / ".slurm").glob("*.sbatch")
    assert (
        f"exec {shlex.quote(sys.executable)} -m candle_restart.task" in script.read_text()
    )  # this venv's python
    job = next((run_root / ".slurm").glob("*.jobid")).read_text().strip()
    task = TaskDir(next(p for p in run_root.iterdir() if (p / "task.json").exists()))

    deadline = time.monotonic() + HANG
    try:
        while lockstep.seen < BATCHES + 4:  # the 4th batch end of epoch 2 waits for its byte
            assert time.monotonic() < deadline and not _exits(task), _exits(task)
            lockstep.poll(1.0)
        fifo.unlink()  # the first attempt holds both open; the rerun trains without lockstep
        ack.unlink()
        subprocess.run(["scancel", "--signal=USR1", "--batch", f"{job}_0"], check=True, env=env, timeout=60)
        os.write(lockstep.writer, b"!")  # the waiting batch end goes on once the signal has come
        while not _exits(task):  # it commits inside epoch 2 and exits 75
            assert time.monotonic() < deadline, "the training never stopped for the signal"
            time.sleep(0.5)  # polling the task's journal, with a deadline
    finally:
        os.close(lockstep.writer)
        os.close(lockstep.reader)
    while len(_exits(task)) < 2:  # the requeued element, rerun by Slurm, trains to the end
        assert time.monotonic() < deadline, [e.to_json() for e in task.events()]
        time.sleep(0.5)  # polling the task's journal, with a deadline
    subprocess.run(
        [
            "sbatch",
            "--wait",
            "-p",
            "debug",
            "-o",
            "/dev/null",
            f"--dependency=afterany:{job}",
            "--wrap",
            "true",
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=HANG,
    )

    journal = [e.to_json() for e in task.events()]
    exits = _exits(task)
    assert [e["exit_code"] for e in exits] == [75, 0], journal
    assert exits[0]["cause"] == "preempted" and "SIGUSR1" in str(exits[0]["reason"]), exits[0]
    assert [e.get("exit_code") for e in journal if e["event"] == "on_preempt"] == [0]  # scontrol requeue
    assert sum(e["event"] == "submit_intent" for e in journal) == 1  # Slurm reran it; nobody resubmitted
    starts = [e for e in journal if e["event"] == "start"]
    assert len(starts) == 2 and all(s.get("job_id") for s in starts), starts
    log = (task.ckpts / "ckpt.log").read_text()
    assert "restarting: epoch 2 continues at batch 5 (4 skipped)" in log, log[-3000:]  # where it was held
    params = {k: v for k, v in task.load_spec().params.items() if k != "progress_fifo"}
    whole = run({**params, "output_dir": str(tmp_path / "whole")})
    state = json.loads(task.state_file.read_text())
    assert state is not None and state["status"] == "completed" and state["result"] == whole  # bit for bit

    status = _cli("status", str(run_root), "--json", env=env)
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)["tasks"]
    assert row["state"] == "completed" and row["preemptions"] == 1, row
    results = _cli("results", str(run_root), "--format", "json", env=env)
    assert results.returncode == 0, results.stderr
    [shown] = json.loads(results.stdout)["tasks"]
    assert shown["state"] == "completed" and shown["result"] == whole, shown
