"""The runner with real training in child processes and real signals at random batches."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from candle_restart.ckpt import CkptLayout, find_restart, verify_checkpoint
from candle_restart.task import create_task
from tests.helpers import Lockstep, journal, open_progress, progress, run_runner, start_runner, state
from tests.helpers.references import References

ENTRY = "candle_restart.examples.regression:run"
EPOCHS, SAMPLES, BATCH = 3, 384, 32  # 12 batches an epoch
BATCHES = SAMPLES // BATCH
BASE = {
    "epochs": EPOCHS,
    "samples": SAMPLES,
    "batch_size": BATCH,
    "resumable_fit": True,
    "ckpt_checksum": True,
    "learning_rate": 0.01,  # the default, named: the reference is then also tests/sweep/test_parsl_sweep.py's first
}


def _params(tmp_path: Path, name: str, **extra: Any) -> dict[str, Any]:
    return {**BASE, "weights_out": str(tmp_path / f"{name}.npz"), **extra}


def _weights(path: Path) -> list[bytes]:
    with np.load(path) as data:
        return [data[k].tobytes() for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


def _final_line(task_dir: Path) -> str:
    logs = sorted((task_dir / "logs").glob("attempt-*.out"))
    lines = [line for line in logs[-1].read_text().splitlines() if "final:" in line]
    return lines[-1].split("final:")[1]


def _signal_at(task_dir: Path, steps: Lockstep, epoch: int, batch: int, signals: list[signal.Signals]) -> Any:
    """Start the runner, step it to (epoch, batch), send ``signals`` there; return the process."""
    proc = start_runner(task_dir)
    for reported in steps.batches(proc):
        if reported >= (epoch, batch):
            for sig in signals:
                proc.send_signal(sig)
            break
    steps.close()
    return proc


@pytest.fixture(scope="module")
def uninterrupted(references: References) -> tuple[list[bytes], str]:
    reference = references.task(ENTRY, BASE)
    recorded = state(reference.path)
    assert recorded["status"] == "completed" and recorded["checkpoint"]["complete"] is True
    # The entry's return value (its final metrics) is recorded, with the checkpointed metric's final value.
    assert set(recorded["result"]) >= {"loss", "val_loss"} and "result_note" not in recorded
    assert recorded["metric"]["name"] == "val_loss" and recorded["metric"]["final"] == recorded["result"]["val_loss"]
    return _weights(reference.weights), _final_line(reference.path)


@pytest.mark.backends
@pytest.mark.parametrize("trial", [0, 2])  # inside the last epoch; at an epoch's last batch
def test_signal_at_a_random_batch_then_resume_is_bitwise_equal(
    tmp_path: Path, uninterrupted: tuple[list[bytes], str], trial: int
) -> None:
    rng = random.Random(trial)
    if trial < 2:  # inside the last epoch: the saved metric accumulators are merged on resume too
        epoch, batch = EPOCHS - 1, rng.randrange(0, BATCHES - 2)
    else:  # at an epoch's last batch: the epoch-end checkpoint serves the request
        epoch, batch = 1, BATCHES - 2
    fifo = tmp_path / "progress"
    steps = Lockstep(fifo)
    task = create_task(tmp_path / "run", _params(tmp_path, "b", progress_fifo=str(fifo)), entry=ENTRY)
    proc = _signal_at(task.path, steps, epoch, batch, [signal.SIGUSR1])
    _out, err = proc.communicate()
    assert proc.returncode == 75, err
    st = state(task.path)
    assert st["status"] == "preempted" and st["exit_code"] == 75
    position = st["checkpoint"]["position"]
    if position is None:  # stopped at an epoch end
        assert st["checkpoint"]["epoch"] >= epoch + 1
    else:  # the signal lands at the next batch end (or, if the target was the last batch, a little later)
        assert (position["epoch"], position["batch"]) >= (epoch + 1, batch + 1) and position[
            "batch"
        ] < BATCHES
    found = find_restart(CkptLayout.at(task.ckpts), True, lambda _m: None)
    assert found is not None and found.info.complete is False and found.info.epoch >= epoch

    code, err = run_runner(task.path)
    assert code == 0, err
    weights, final = uninterrupted
    assert _weights(tmp_path / "b.npz") == weights
    assert _final_line(task.path) == final  # the resumed epoch's training metrics too
    assert [e.kind for e in journal(task.path)] == ["start", "exit", "start", "exit"]


def test_two_signals_in_a_row_commit_once_and_exit_75(tmp_path: Path) -> None:
    fifo = tmp_path / "progress"
    steps = Lockstep(fifo)
    task = create_task(tmp_path / "run", _params(tmp_path, "b", progress_fifo=str(fifo)), entry=ENTRY)
    proc = _signal_at(task.path, steps, 1, 3, [signal.SIGUSR1, signal.SIGTERM])
    _out, err = proc.communicate()
    assert proc.returncode == 75, err
    found = find_restart(CkptLayout.at(task.ckpts), True, lambda _m: None)
    assert found is not None and found.via == "last" and found.info.position is not None and found.info.position.epoch == 2
    log = (task.ckpts / "ckpt.log").read_text()
    assert log.count("writing mid-epoch checkpoint") == 1
    assert re.search(r"preempted: SIGUSR1 received; .*\((1|2) signal\(s\)", log)


def test_signal_during_a_commit_lets_the_commit_finish(tmp_path: Path) -> None:
    task = create_task(tmp_path / "run", _params(tmp_path, "b"), entry="tests.programs.commit_signal:run")
    code, err = run_runner(task.path)
    assert code == 75, err
    layout = CkptLayout.at(task.ckpts)
    assert layout.linked_epoch(layout.last) == 2
    info = verify_checkpoint(layout.epoch_dir(2), check_checksums=True)
    assert info.position is None and info.files is not None and "train_state.npz" in info.files
    assert "SIGTERM received; stopped after epoch 2" in state(task.path)["reason"]
    code, err = run_runner(task.path)
    assert code == 0, err


@pytest.mark.backends
def test_sigkill_at_a_random_instant_falls_back_to_the_newest_commit(tmp_path: Path) -> None:
    rng = random.Random(5)
    fifo = tmp_path / "progress"
    fd = open_progress(fifo)
    params = _params(tmp_path, "b", progress_fifo=str(fifo), ckpt_save_seconds=0.01, ckpt_keep_limit=2)
    task = create_task(tmp_path / "run", params, entry=ENTRY)
    proc = start_runner(task.path)
    target = (rng.randrange(EPOCHS - 1), rng.randrange(BATCHES))
    for reported in progress(fd, proc):
        if reported >= target:
            break
    time.sleep(rng.uniform(0, 0.02))  # the random instant of the kill, not synchronisation
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    os.close(fd)
    assert state(task.path)["status"] == "running"  # nobody recorded the end: the coordinator's job
    found = find_restart(CkptLayout.at(task.ckpts), True, lambda _m: None)
    assert found is not None and found.via == "last"
    code, err = run_runner(task.path)
    assert code == 0, err
    assert state(task.path)["attempt"] == 2 and state(task.path)["status"] == "completed"
