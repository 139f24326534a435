"""A search's stop request reaches a runner that nothing signals (as on another host than the driver's).

The driver writes ``pruned.json`` (and signals only runners on its own host); the runner polls
for it (`candle_restart.task.stoppoll`), checkpoints and stops with exit 75, and the task is
``pruned`` from then on, its checkpoints kept and verifying.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from candle_restart.ckpt import CkptLayout
from candle_restart.ckpt.restore import verify_checkpoint
from candle_restart.coordinator import scan
from candle_restart.records.search import PRUNED_FILE, PruneRecord
from candle_restart.runtime import fsio
from candle_restart.task import create_task
from tests.helpers import start_runner

TRAINER = "tests.sweep.pbt_trainer:run"


def test_a_runner_stops_when_its_task_is_pruned_by_a_driver_that_does_not_signal_it(tmp_path: Path) -> None:
    task = create_task(tmp_path, {"epochs": 200, "learning_rate": 0.01, "epoch_seconds": 0.1}, entry=TRAINER)
    runner = start_runner(task.path)  # a process of its own; the test (the "driver") never signals it
    layout = CkptLayout.at(task.ckpts)
    deadline = time.monotonic() + 60
    while not layout.list_epochs():
        assert runner.poll() is None, runner.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint committed"
        time.sleep(0.05)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    fsio.atomic_write_bytes(task.path / PRUNED_FILE, PruneRecord("worse than the median", 1, stamp).to_bytes())
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 75, err  # checkpointed and stopped, not trained to the end
    said = err + "".join(path.read_text() for path in task.log_paths(1))  # an entry's output: the attempt's logs
    assert "asks this task to stop (pruned by its search)" in said
    epochs = layout.list_epochs()
    assert epochs and epochs[-1] < 200
    verify_checkpoint(layout.epoch_dir(epochs[-1]), True)
    (status,) = scan(tmp_path, {})
    assert status.state == "pruned"
