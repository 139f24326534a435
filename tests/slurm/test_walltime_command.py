"""A ``command`` task in 1-minute allocations with no warning signal, on the real local Slurm.

Done-when of issue 28: each halt is recorded as ``timeout`` (the command's exit 75 cannot say why;
its heartbeat file does), Slurm never kills it (no job ends TIMEOUT), and each allocation is left
unused after training for no more than max(10 s, 3 x its measured commit-and-exit time).
Measured per halted attempt from the records alone: the allocation's end (Slurm's, recorded by
the runner in ``start``), the state of the halt's checkpoint taken (``events.jsonl``: the last
commit of the attempt) and the runner's end (``exit``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from candle_restart.coordinator import scan
from candle_restart.records.epochs import read_events
from candle_restart.report.goodfacts import seconds, task_breakdown
from candle_restart.slurm import SlurmBackend, read_options
from candle_restart.task import TaskDir
from tests.helpers.processes import child_pythonpath
from tests.slurm.test_slurm_backend import _jobs, _resume, _submit, _wait_job

COMMAND = Path(__file__).with_name("wall_command.py")
EPOCHS = 70  # 1 s each: at most ~55 fit in a 1-minute allocation, so at least one halt, then the rest


def test_a_command_halts_before_each_walltime_as_timeout_and_leaves_little_unused(
    tmp_path: Path, slurm_conf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resubmissions below are made from this process, as `resume --backend slurm` makes them from
    # a login node: their jobs inherit its environment, where the command finds the tests package.
    monkeypatch.setenv("PYTHONPATH", child_pythonpath())
    config = {
        "name": "cmdwall",
        "run_root": "runs",
        "command": [sys.executable, str(COMMAND)],
        "params": {"epochs": EPOCHS, "epoch_seconds": 1, "log": True},
        "executor": {
            "kind": "slurm",
            "slurm": {"partition": "debug", "walltime": "00:01:00", "signal_seconds": 0},
        },
        "restart": {"max_timeouts": 5, "backoff_seconds": 0},
    }
    path = tmp_path / "cmdwall.yaml"
    path.write_text(yaml.safe_dump(config))
    _submit(path, slurm_conf)
    run_root = tmp_path / "runs"
    backend = SlurmBackend(read_options(run_root))  # as `resume --backend slurm` does: the sweep's walltime
    for _ in range(6):
        _wait_job(_jobs(run_root)[-1])
        [status] = scan(run_root, {"slurm": backend})
        if status.state == "completed":
            break
        assert status.state == "preempted" and status.cause == "timeout", status
        [outcome] = _resume(run_root, backend)
        assert outcome.acted, outcome

    task = TaskDir(next(run_root.glob("cmdwall-*")))
    journal = task.events()
    starts = [e for e in journal if e.kind == "start"]
    exits = [e for e in journal if e.kind == "exit"]
    assert [e.exit_code for e in exits][-1] == 0 and len(exits) >= 2, [e.to_json() for e in exits]
    halts = list(zip(starts[:-1], exits[:-1], strict=True))
    commits = [(seconds(c.taken), c) for c in read_events(task.ckpts) if c.kind == "commit"]
    for start, end in halts:
        assert end.exit_code == 75 and end.cause == "timeout", end.to_json()
        pace = end.extras.get("epoch_seconds")  # the runner's figure for the bad-host rule's slow epochs
        assert isinstance(pace, float) and 1.0 <= pace < 2.0, end.to_json()
        job = str(start.extras["job_id"])
        assert backend.job_state(job) not in ("TIMEOUT", None), job  # it ended itself, before the limit
        allocation_end = seconds(str(start.extras["allocation_end"]))
        began, ended = seconds(start.time), seconds(end.time)
        assert allocation_end is not None and began is not None and ended is not None
        taken = max(t for t, _ in commits if t is not None and began <= t <= ended)  # the halt's checkpoint
        commit_and_exit = ended - taken
        unused = allocation_end - taken  # after training stopped: the commit, the exit, and nothing
        bound = max(10.0, 3 * commit_and_exit)
        print(f"attempt {start.attempt}: unused {unused:.1f} s, commit and exit {commit_and_exit:.2f} s")
        assert 0 < unused <= bound, (start.attempt, unused, commit_and_exit)
    [status] = scan(run_root, {"slurm": backend})
    assert status.state == "completed" and status.causes == {"timeout": len(halts)}
    good = task_breakdown(task.path)  # goodput's figures from the same records
    assert good.queue_wait is not None and good.queue_wait >= 0  # Slurm's own Start - Submit
    expected = sum((seconds(str(s.extras["allocation_end"])) or 0) - (seconds(e.time) or 0) for s, e in halts)
    assert good.halt_unused == pytest.approx(expected, abs=1e-3) and good.halt_unused is not None
    assert good.halt_unused <= len(halts) * 10.0
