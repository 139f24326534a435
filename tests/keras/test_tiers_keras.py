"""Two checkpoint tiers with real Keras training: SIGTERM -> the preemption checkpoint is drained to the
shared tier before exit 75, and a run on a new node (no node-local tier) resumes from the shared tier."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from candle_restart.ckpt import CkptLayout, verify_checkpoint
from candle_restart.records.localtier import describe_local_tier, progress_of
from tests.helpers import EXAMPLE, open_progress, progress, run_example, runner_env


def test_sigterm_drains_to_the_shared_tier_before_exit_75_and_a_new_node_resumes(tmp_path: Path) -> None:
    fifo = tmp_path / "progress"
    fd = open_progress(fifo)
    common = ["--epochs", "3", "--output_dir", "out", "--samples", "384", "--ckpt_save_best", "False"]
    # A drain interval no checkpoint of this run reaches: only the preemption's and the final one drain.
    tiers = ["--ckpt_drain_interval", "100", "--ckpt_checksum", "True"]
    node_a = ["--ckpt_local_directory", str(tmp_path / "node-a"), "--progress_fifo", str(fifo)]
    proc = subprocess.Popen(
        [sys.executable, "-m", EXAMPLE, *common, *tiers, *node_a],
        cwd=tmp_path,
        env=runner_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for reported in progress(fd, proc):
            if reported >= (1, 2):
                proc.send_signal(signal.SIGTERM)
                break
        out, err = proc.communicate()
    finally:
        os.close(fd)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 75, err[-3000:]
    assert "preempted: SIGTERM received; stopped in epoch 2 after batch" in out
    shared = CkptLayout.at(tmp_path / "out" / "ckpts")
    last = shared.linked_epoch(shared.last)
    assert last == 2 and shared.list_epochs() == [2]  # epoch 1 was not drained: the interval skipped it
    info = verify_checkpoint(shared.epoch_dir(2), True)
    assert info.epoch == 1 and info.position is not None and info.position.epoch == 2
    assert "grace period" in (shared.root / "ckpt.log").read_text()
    # Committed on the shared tier itself at the stop: no reader is told of a newer node-local one.
    assert describe_local_tier(shared.root, progress_of(2, info)) is None

    # A new node: its node-local directory holds nothing of this run.
    local_b = tmp_path / "node-b"
    resumed = run_example([*common, *tiers, "--ckpt_local_directory", str(local_b)], tmp_path)
    assert "restarting from epoch: 1" in resumed.stdout
    assert "trained epochs 2..3" in resumed.stdout
    final = verify_checkpoint(shared.epoch_dir(3), True)
    assert shared.linked_epoch(shared.last) == 3 and final.complete is True
    log = (shared.root / "ckpt.log").read_text()
    assert f"ckpt_local_directory: {local_b}" in log  # it committed node-locally first,
    assert "training complete and on the shared tier; removed the node-local tier" in log  # then freed it
    assert list(local_b.iterdir()) == []
