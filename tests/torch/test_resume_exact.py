"""Exact resume of a plain PyTorch loop, through real processes: 2 epochs then resume to 4 equals 4
uninterrupted, bit for bit; a real signal inside an epoch exits 75 and the resume continues at the
next batch, bit for bit; kill -9 while checkpoints commit loses no committed checkpoint.

The loop (``trainer.py``) has unseeded Dropout, AdamW, OneCycleLR stepped per batch, a shuffled
DataLoader and an epoch-loss meter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")

from candle_restart.ckpt.layout import CkptLayout  # noqa: E402
from candle_restart.ckpt.restore import verify_checkpoint  # noqa: E402
from candle_restart.records.ckptinfo import read_ckpt_info  # noqa: E402
from tests.helpers import runner_env  # noqa: E402

TRAINER = Path(__file__).resolve().parent / "trainer.py"
EPOCH_BATCHES = 12


def _args(ckpts: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(TRAINER),
        "--epochs",
        str(epochs),
        "--ckpt_directory",
        str(ckpts),
        "--out",
        str(out),
        *extra,
    ]


def _train(ckpts: Path, out: Path, epochs: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _args(ckpts, out, epochs, *extra), env=runner_env(), text=True, capture_output=True, timeout=300
    )


def _losses(stdout: str) -> dict[int, float]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {d["epoch"]: d["loss"] for d in lines if "loss" in d}


def _final(path: Path) -> dict[str, Any]:
    return dict(torch.load(path, weights_only=True))


def _assert_bitwise(a: object, b: object, where: str = "") -> None:
    """Equal structures whose tensors have equal bytes (dtype, shape and every bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert (
            a.contiguous().reshape(-1).view(torch.uint8).tolist()
            == b.contiguous().reshape(-1).view(torch.uint8).tolist()
        ), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_bitwise(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_bitwise(x, y, f"{where}/{i}")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, float]]:
    """4 epochs uninterrupted: the final state and the epoch losses."""
    work = tmp_path_factory.mktemp("whole")
    proc = _train(work / "ckpts", work / "final.pt", 4)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "final.pt", _losses(proc.stdout)


def test_two_epochs_then_a_new_process_to_four_equals_four_uninterrupted(
    tmp_path: Path, whole: tuple[Path, dict[int, float]]
) -> None:
    first = _train(tmp_path / "ckpts", tmp_path / "two.pt", 2)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "checkpoints list: [1, 2]" in first.stdout
    second = _train(tmp_path / "ckpts", tmp_path / "final.pt", 4)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "restarting from epoch: 2" in second.stdout and "checkpoints list: [3, 4]" in second.stdout
    final, losses = whole
    assert _losses(second.stdout) == {3: losses[3], 4: losses[4]}
    _assert_bitwise(_final(tmp_path / "final.pt"), _final(final))
    # CANDLE's layout and names: model.h5 where CANDLE's tools look, with the state beside it.
    last = tmp_path / "ckpts" / "last"
    assert os.readlink(last) == "epochs/004" and sorted(p.name for p in last.iterdir()) == [
        "ckpt-info.json",
        "model.h5",
        "train_state.json",
    ]
    info = read_ckpt_info(last / "ckpt-info.json")
    assert info.model_file == "model.h5" and info.state_file == "train_state.json" and info.complete


def test_a_signal_inside_an_epoch_exits_75_and_the_resume_continues_at_the_next_batch(
    tmp_path: Path, whole: tuple[Path, dict[int, float]]
) -> None:
    ckpts = tmp_path / "ckpts"
    stopped = _train(ckpts, tmp_path / "final.pt", 4, "--signal_at", "2:5")
    assert stopped.returncode == 75, stopped.stderr[-3000:]
    assert "preempted: SIGUSR1 received; stopped in epoch 2 after batch 5" in stopped.stdout
    info = read_ckpt_info(ckpts / "last" / "ckpt-info.json")
    assert info.position is not None and (info.position.epoch, info.position.batch) == (2, 5)
    assert info.epoch == 1  # epochs done: the loop's first epoch on resume
    resumed = _train(ckpts, tmp_path / "final.pt", 4)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "restarting: epoch 2 continues at batch 6 (5 skipped)" in resumed.stdout
    final, losses = whole
    assert _losses(resumed.stdout) == {2: losses[2], 3: losses[3], 4: losses[4]}  # the meter came back too
    _assert_bitwise(_final(tmp_path / "final.pt"), _final(final))


def _verify_all(ckpts: Path) -> int:
    """Every committed checkpoint verifies (sizes and CRC-32) and last names one of them; the
    batches its newest checkpoint had done."""
    layout = CkptLayout.at(ckpts)
    epochs = layout.list_epochs()
    for epoch in epochs:
        verify_checkpoint(layout.epoch_dir(epoch), True)
    assert layout.linked_epoch(layout.last) == max(epochs)
    info = read_ckpt_info(layout.last / "ckpt-info.json")
    return info.epoch * EPOCH_BATCHES + (0 if info.position is None else info.position.batch)


def test_kill_minus_9_while_checkpoints_commit_loses_nothing(
    tmp_path: Path, whole: tuple[Path, dict[int, float]]
) -> None:
    ckpts, out = tmp_path / "ckpts", tmp_path / "final.pt"
    # A checkpoint after every batch, committed in the background: a kill lands in a commit or close to one.
    extra = ("--ckpt_save_batches", "1", "--ckpt_checksum", "True", "--progress")
    committed = 0
    for kill_after in (5, 11, 9):  # batches seen by this attempt before its kill (48 in all)
        proc = subprocess.Popen(
            _args(ckpts, out, 4, *extra),
            env=runner_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        seen = 0
        deadline = time.monotonic() + 120
        while seen < kill_after and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += '"batch"' in line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert seen == kill_after and proc.returncode == -signal.SIGKILL
        done = _verify_all(ckpts)
        assert done > committed  # this attempt committed, and nothing committed earlier was lost
        committed = done
    last = _train(ckpts, out, 4, "--ckpt_checksum", "True")
    assert last.returncode == 0, last.stderr[-3000:]
    _assert_bitwise(_final(out), _final(whole[0]))
