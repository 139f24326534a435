"""End to end through real Parsl HTEX: a 4-task sweep, real signals, exact resume, no task run twice at once."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from candle_restart.sweep import expand, parse_sweep
from candle_restart.task import TaskDir
from tests.helpers import ROOT, open_progress, runner_env
from tests.helpers.references import References

BASE = {"epochs": 3, "samples": 384, "batch_size": 32, "resumable_fit": True, "ckpt_checksum": True}
# task index -> (epoch, batch) at which each attempt gets SIGUSR1: task 0 twice, task 1 once.
SIGNALS = {0: [(1, 3), (2, 5)], 1: [(1, 6)]}


def _weights(path: Path) -> list[bytes]:
    with np.load(path) as data:
        return [data[k].tobytes() for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


def _drive(
    proc: subprocess.Popen[str], fds: dict[int, int], tasks: dict[int, TaskDir]
) -> tuple[str, dict[int, int]]:
    """Read progress from every task and the driver's output until the driver exits; send the SIGNALS."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    for i, fd in fds.items():
        sel.register(fd, selectors.EVENT_READ, i)
    sel.register(proc.stdout, selectors.EVENT_READ, "driver")
    pending = {i: list(targets) for i, targets in SIGNALS.items()}
    signalled: set[int] = set()
    sent: dict[int, int] = {i: 0 for i in SIGNALS}
    output: list[str] = []
    buffers = {i: b"" for i in fds}
    while True:
        for key, _ in sel.select():
            if key.data == "driver":
                line = proc.stdout.readline()
                if not line:
                    return "".join(output), sent
                output.append(line)
                continue
            i = key.data
            buffers[i] += os.read(key.fd, 4096)
            *lines, buffers[i] = buffers[i].split(b"\n")
            for raw in lines:
                reported = tuple(map(int, raw.split()))
                if not pending.get(i) or reported < pending[i][0]:
                    continue
                state = json.loads(tasks[i].state_file.read_text())
                if state.get("status") == "running" and state["pid"] not in signalled:
                    os.kill(state["pid"], signal.SIGUSR1)
                    signalled.add(state["pid"])
                    pending[i].pop(0)
                    sent[i] += 1


def test_sweep_through_parsl_survives_signals_and_resumes_exactly(
    tmp_path: Path, references: References
) -> None:
    fifos = {i: tmp_path / f"progress-{i}" for i in range(4)}
    fds = {i: open_progress(f) for i, f in fifos.items()}
    variants = [
        {
            "learning_rate": 0.01 / (i + 1),
            "progress_fifo": str(fifos[i]),
            "weights_out": str(tmp_path / f"w{i}.npz"),
        }
        for i in range(4)
    ]
    config = {
        "name": "e2e",
        "run_root": "runs",
        "entry": "candle_restart.examples.regression:run",
        "params": BASE,
        "vary": {"list": variants},
        "executor": {"kind": "local", "max_workers": 2},
        "restart": {"max_failures": 1, "max_preemptions": 5},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    expansion = expand(parse_sweep(tmp_path / "sweep.yaml"))
    by_fifo = {json.loads(t.task_file.read_text())["params"]["progress_fifo"]: t for t in expansion.tasks}
    tasks = {i: by_fifo[str(f)] for i, f in fifos.items()}

    cmd = [sys.executable, "-m", "candle_restart.cli", "sweep", "run", str(tmp_path / "sweep.yaml")]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=runner_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output, sent = _drive(proc, fds, tasks)
    proc.wait()
    for fd in fds.values():
        os.close(fd)
    assert proc.returncode == 0, output
    assert sent == {0: 2, 1: 1}, output
    assert "4 tasks: 4 completed" in output

    for i, task in tasks.items():
        events = [e.kind for e in task.events() if e.kind in ("start", "exit")]
        assert events == ["start", "exit"] * (len(events) // 2), (
            f"task {i} ran concurrently with itself: {events}"
        )
        exits = [e for e in task.events() if e.kind == "exit"]
        assert [e.exit_code for e in exits] == [75] * len(SIGNALS.get(i, [])) + [0]
        submits = [e for e in task.events() if e.kind == "submit_intent"]
        assert len(submits) == 1  # Parsl reran the preempted attempts: the coordinator never resubmitted

    # The same parameters, never interrupted: run side by side (and shared with other tests) by `references`.
    variants = [{**BASE, "learning_rate": 0.01 / (i + 1)} for i in range(4)]
    refs = references.tasks("candle_restart.examples.regression:run", variants)
    for i, ref in enumerate(refs):
        assert _weights(tmp_path / f"w{i}.npz") == _weights(ref.weights), f"task {i} differs"

    again = subprocess.run(cmd, cwd=ROOT, env=runner_env(), capture_output=True, text=True)
    assert (
        again.returncode == 0
        and "nothing to do: all 4 tasks are completed; nothing submitted" in again.stdout
    )
