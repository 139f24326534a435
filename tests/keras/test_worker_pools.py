"""A training whose data comes from a pool of forked workers (``PyDataset(workers=2,
use_multiprocessing=True)``) exits when it is done and when it is preempted.

The workers are forked from the armed training; at the end Keras ends the pool with SIGTERM and
waits for it.  Real processes and signals: the script runs in a process of its own, and a
training that never exits fails the test by its timeout, not by hanging it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from candle_restart.runtime.preempt import EXIT_RESUME
from tests.helpers import runner_env

SCRIPT = """
import os, signal, sys, time
import numpy as np, keras
from candle_restart.keras import CandleCkptKeras

class Batches(keras.utils.PyDataset):
    def __init__(self, **kw):
        super().__init__(**kw)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(160, 4)).astype("float32")
        self.y = self.x.sum(1, keepdims=True)
    def __len__(self):
        return 10
    def __getitem__(self, i):
        if sys.argv[2] == "group":
            time.sleep(0.2)  # a slow loader: batches are in the workers' hands when the signal comes
        return self.x[i * 16:(i + 1) * 16], self.y[i * 16:(i + 1) * 16]

class SignalAt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if sys.argv[2] == "signal" and batch == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        if sys.argv[2] == "group" and batch == 3:
            from candle_restart.runtime.preempt import REQUEST
            print("batch 3", flush=True)  # the test signals the whole group now, as the runner forwards
            deadline = time.monotonic() + 120
            while not REQUEST.requested and time.monotonic() < deadline:
                time.sleep(0.01)  # polls the flag the handler sets

ckpt = CandleCkptKeras({"epochs": 3, "ckpt_directory": sys.argv[1], "ckpt_save_best": False}, verbose=False)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
J = ckpt.restart(model)
model.fit(Batches(workers=2, use_multiprocessing=True), epochs=3, initial_epoch=J["epoch"] if J else 0,
          callbacks=[ckpt, SignalAt()], verbose=0)
print("fit returned", flush=True)
"""


def _run(ckpts: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ckpts), mode],
        env=runner_env(),
        capture_output=True,
        text=True,
        timeout=240,  # a pool worker that ignored its TERM kept the training waiting forever
    )


def test_a_notice_signal_sent_to_the_whole_group_leaves_the_workers_serving_the_stop(tmp_path: Path) -> None:
    """The task runner forwards USR1 to the training's process group, workers included: they must
    not die of it (the training would wait for their batches), and the pool must still end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "ckpts"), "group"],
        env=runner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = "-"
        while line and line != "batch 3\n":  # the callback's own lines come first
            line = proc.stdout.readline()
        assert line == "batch 3\n", "the training ended before its third batch"
        os.killpg(proc.pid, signal.SIGUSR1)
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == EXIT_RESUME, err[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_training_fed_by_forked_workers_exits_75_when_preempted_and_0_when_done(tmp_path: Path) -> None:
    stopped = _run(tmp_path / "ckpts", "signal")
    assert stopped.returncode == EXIT_RESUME, stopped.stderr[-2000:]
    assert "fit returned" not in stopped.stdout
    done = _run(tmp_path / "ckpts", "plain")
    assert done.returncode == 0 and "fit returned" in done.stdout, done.stderr[-2000:]
    assert "restarting from epoch" in (tmp_path / "ckpts" / "ckpt.log").read_text()
