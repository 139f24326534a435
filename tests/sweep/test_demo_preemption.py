"""The sweep's demo preemption signals a task's runner once it has committed N checkpoints, counted from
``ckpts/events.jsonl`` (real commits through the core, a real process receiving SIGUSR1)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from candle_restart.sweep.runners import DemoPreemption
from candle_restart.task import create_task
from tests.helpers import BytesCkpt, BytesModel

# Blocks SIGUSR1, says so, then waits for it: exit 0 only once it came.
WAITER = (
    "import signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\n"
    "print('ready', flush=True)\n"
    "signal.sigwait([signal.SIGUSR1])\n"
    "print('got SIGUSR1', flush=True)\n"
)


def test_the_demo_signals_after_the_asked_number_of_commits(tmp_path: Path) -> None:
    task = create_task(tmp_path / "run", {"epochs": 4}, entry="tests.coordinator.toy:run", sweep="demo")
    said: list[str] = []
    waiter = subprocess.Popen([sys.executable, "-c", WAITER], stdout=subprocess.PIPE, text=True)
    try:
        assert waiter.stdout is not None and waiter.stdout.readline() == "ready\n"
        task.write_state({"status": "running", "pid": waiter.pid, "host": socket.gethostname()})
        demo = DemoPreemption(task, after_checkpoints=3, signals=1, log=said.append)
        ckpt = BytesCkpt({"epochs": 4, "ckpt_directory": str(task.ckpts)}, logger=None)
        ckpt.set_model(BytesModel(b"weights"))
        ckpt.ckpt_epoch(0, "-", 0.5)  # one commit
        ckpt.save_midepoch(1, 3)  # two: a mid-epoch checkpoint counts
        demo.poll()
        assert said == [] and demo.signalled == set()
        ckpt.ckpt_epoch(1, "-", 0.4)  # three
        demo.poll()
        assert said == [f"demo: sent SIGUSR1 to {task.task_id} (pid {waiter.pid}) mid-training"]
        out, _ = waiter.communicate(timeout=120)
        assert out == "got SIGUSR1\n" and waiter.returncode == 0
        demo.poll()  # its one signal is spent
        assert len(said) == 1
    finally:
        if waiter.poll() is None:
            waiter.send_signal(signal.SIGKILL)
            waiter.wait()
