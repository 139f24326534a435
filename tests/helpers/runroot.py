"""A run root with tasks in every kind of state, made by real runs (the report's tests read it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from candle_restart.task import TaskDir, create_task, run_task
from tests.helpers.processes import ROOT, run_runner
from tests.helpers.tasks import TOY

TRAINER = "tests.report.trainer:run"
ARTIFACTS = ROOT / "test-artifacts" / "report"
INJECTED = '<b id="injected">x</b>'  # a training error's message that must reach the page as text


def _task(root: Path, name: str, entry: str = TRAINER, **params: Any) -> TaskDir:
    params.setdefault("epochs", 6)
    return create_task(root, params, entry=entry, sweep=name)


def build_run_root(root: Path) -> dict[str, TaskDir]:
    """Ten tasks, named by what happened to them (the first part of each task id)."""
    t = {
        "completed": _task(root, "completed"),
        # ckpt_save_interval 2 and a metric that worsens at epoch 3: epoch 3 is not saved, so the
        # restart after it goes back to epoch 2 and trains epoch 3 again.
        "resumed": _task(
            root, "resumed", curve=[0.9, 0.7, 0.75, 0.6, 0.62, 0.5], ckpt_save_interval=2, preempt_at=[3]
        ),
        "midepoch": _task(root, "midepoch", epochs=4, stop_inside=[3, 5]),
        "preempted": _task(root, "preempted", preempt_at=[2]),
        "failed": _task(root, "failed", fail_at=3, fail_message=f"diverged {INJECTED}"),
        "corrupt": _task(root, "corrupt", entry=TOY, preempt_at=1, epochs=3),
        "toyresumed": _task(root, "toyresumed", entry=TOY, preempt_at=2, epochs=4),
        "new": _task(root, "new"),
        "badinput": create_task(root, {"epochs": 1, "ckpt_keep_limit": 0}, entry=TRAINER, sweep="badinput"),
        "tornstate": _task(root, "tornstate", preempt_at=[2]),
    }
    assert run_task(t["completed"].path) == 0
    assert [run_task(t["resumed"].path), run_task(t["resumed"].path)] == [75, 0]
    assert [run_task(t["midepoch"].path), run_task(t["midepoch"].path)] == [75, 0]
    assert run_task(t["preempted"].path) == 75
    assert run_task(t["failed"].path) == 1
    assert run_task(t["corrupt"].path) == 75
    for info in (t["corrupt"].ckpts / "epochs").glob("*/ckpt-info.json"):
        info.write_text("{torn")  # as the coordinator's tests corrupt a checkpoint
    # The toy keeps no ckpt.log: its restart is found from the checkpoints' writers, which are
    # different processes only when each attempt is one, as on a cluster.
    assert [run_runner(t["toyresumed"].path)[0], run_runner(t["toyresumed"].path)[0]] == [75, 0]
    assert run_task(t["badinput"].path) == 2
    assert run_task(t["tornstate"].path) == 75
    text = t["tornstate"].state_file.read_text()
    t["tornstate"].state_file.write_text(text[: len(text) // 2])  # a torn write
    return t
