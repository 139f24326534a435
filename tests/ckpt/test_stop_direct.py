"""Two tiers: the checkpoint a stop waits for is committed on the shared tier itself.

One write instead of a node-local commit and a copy (`CkptEngine.run`). A drain it
supersedes is abandoned first, an older best still drains first, and a shared tier that
fails puts the checkpoint on the node-local tier, where the flush finds it.

Framework-free, through the core's `CandleCkpt` with the bytes backend of tests/helpers;
real files and threads. A hold point (the drainer's check between chunks, wrapped) parks a
drain until the stop's commit has asked for the way, so the order of events is fixed.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, CommitError, verify_checkpoint
from candle_restart.records.localtier import LOCAL_TIER_FILE, describe_local_tier, read_local_tier
from candle_restart.runtime.preempt import PreemptionRequest
from tests.faultfs.control import FaultFS
from tests.helpers import BytesCkpt, BytesModel

DEADLINE = 60.0


def _params(shared: Path, local: Path, **extra: object) -> dict[str, object]:
    return {
        "epochs": 10,
        "ckpt_directory": str(shared),
        "ckpt_local_directory": str(local),
        "ckpt_save_best": False,
        "ckpt_keep_limit": 10,
        "ckpt_checksum": True,
        "ckpt_drain_interval": 100,  # nothing drains on its own but a best
        **extra,
    }


def _save(ckpt: BytesCkpt, epoch: int, metric: float | None = None) -> None:
    """Checkpoint 1-based ``epoch`` with a payload naming it."""
    ckpt.model.payload = f"epoch {epoch}".encode() * 5000
    ckpt.ckpt_epoch(epoch - 1, "-", metric)  # "-": lower is better


def _hold_drain_of(ckpt: BytesCkpt, epoch: int, until: Callable[[object], bool]) -> threading.Event:
    """Park the drain of ``epoch`` at its first check until ``until(job)``; the event is set once parked."""
    drainer = ckpt.drainer
    assert drainer is not None
    original: Callable[..., None] = drainer._check
    parked = threading.Event()

    def held(job: object) -> None:
        if getattr(job, "epoch") == epoch and not parked.is_set():  # noqa: B009 (the drainer's private job)
            parked.set()
            deadline = time.monotonic() + DEADLINE
            while not until(job) and time.monotonic() < deadline:
                time.sleep(0.005)  # polls a condition the other thread sets; not a synchronisation by time
        original(job)

    drainer._check = held  # type: ignore[method-assign]
    return parked


def test_a_stop_checkpoint_goes_straight_to_the_shared_tier(
    tmp_path: Path, preemption: PreemptionRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = BytesCkpt(_params(tmp_path / "shared", tmp_path / "local"), logger=None)
    ckpt.set_model(BytesModel())
    lines: list[str] = []
    monkeypatch.setattr(ckpt, "info", lines.append)
    _save(ckpt, 1)  # node-local only: the interval skips it
    preemption.request(signal.SIGTERM)
    _save(ckpt, 2)
    ckpt.wait_for_commit()  # the flush before exit 75: nothing left to copy

    shared = CkptLayout.at(tmp_path / "shared")
    assert shared.list_epochs() == [2] and shared.linked_epoch(shared.last) == 2
    assert (shared.last / "model.bin").read_bytes() == b"epoch 2" * 5000
    verify_checkpoint(shared.epoch_dir(2), True)
    assert ckpt.layout.list_epochs() == [1]  # never written node-locally, never copied
    assert ckpt.drainer is not None and (ckpt.drainer.drains, ckpt.drainer.bytes_copied) == (0, 0)
    assert shared.work_dirs() == []
    record = read_local_tier(shared.root / LOCAL_TIER_FILE)  # not rewritten in the exit's path,
    assert record is not None and (record.epoch, record.drained) == (1, False)
    assert describe_local_tier(shared.root, (2, None)) is None  # and superseded for its readers
    assert any("drain: epoch 2 is on the shared tier" in line and "after SIGTERM" in line for line in lines)
    ckpt.release_writer()


def test_the_drain_in_flight_is_abandoned_for_the_stop_checkpoint(
    tmp_path: Path, preemption: PreemptionRequest
) -> None:
    ckpt = BytesCkpt(_params(tmp_path / "shared", tmp_path / "local", ckpt_drain_interval=1), logger=None)
    ckpt.set_model(BytesModel())
    assert ckpt.drainer is not None
    lines: list[str] = []
    ckpt.drainer.log = lines.append
    parked = _hold_drain_of(ckpt, 1, lambda job: bool(getattr(job, "abandon")))  # noqa: B009
    _save(ckpt, 1)
    assert parked.wait(DEADLINE), "the drain of epoch 1 never reached its hold point"
    preemption.request(signal.SIGTERM)
    _save(ckpt, 2)
    ckpt.wait_for_commit()

    shared = CkptLayout.at(tmp_path / "shared")
    assert shared.list_epochs() == [2] and shared.linked_epoch(shared.last) == 2
    assert shared.work_dirs() == [] and ckpt.drainer.drains == 0
    assert not [p for p in ckpt.layout.root.iterdir() if p.name.startswith(".drain-")]
    assert any("epoch 1 abandoned" in line for line in lines), lines
    ckpt.release_writer()


def test_an_older_best_drains_before_the_stop_checkpoint(tmp_path: Path, preemption: PreemptionRequest) -> None:
    """A best is superseded only by a best: its drain completes, then the stop's commit lands."""
    ckpt = BytesCkpt(
        _params(tmp_path / "shared", tmp_path / "local", ckpt_save_best=True, ckpt_save_best_metric="loss"),
        logger=None,
    )
    ckpt.set_model(BytesModel())
    drainer = ckpt.drainer
    assert drainer is not None
    asked = threading.Event()
    clear_way = drainer.clear_way

    def asking(best: bool) -> None:
        asked.set()
        clear_way(best)

    drainer.clear_way = asking  # type: ignore[method-assign]
    parked = _hold_drain_of(ckpt, 1, lambda _job: asked.is_set())
    _save(ckpt, 1, metric=1.0)  # a best: always drained
    assert parked.wait(DEADLINE)
    preemption.request(signal.SIGTERM)
    _save(ckpt, 2, metric=2.0)  # worse: not a best
    ckpt.wait_for_commit()

    shared = CkptLayout.at(tmp_path / "shared")
    assert shared.list_epochs() == [1, 2]
    assert (shared.linked_epoch(shared.best), shared.linked_epoch(shared.last)) == (1, 2)
    assert drainer.drains == 1 and shared.work_dirs() == []
    ckpt.release_writer()


def test_a_failing_shared_tier_puts_the_stop_checkpoint_on_the_node_local_tier(
    tmp_path: Path, faultfs: FaultFS, preemption: PreemptionRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = BytesCkpt(_params(faultfs.path("shared"), tmp_path / "local"), logger=None)
    ckpt.set_model(BytesModel())
    lines: list[str] = []
    monkeypatch.setattr(ckpt, "info", lines.append)
    _save(ckpt, 1)
    faultfs.enospc_after(0)
    preemption.request(signal.SIGTERM)
    _save(ckpt, 2)
    assert ckpt.layout.list_epochs() == [1, 2]  # not lost: committed node-locally
    assert any("could not be committed on the shared tier" in line for line in lines), lines
    with pytest.raises(CommitError, match=r"epoch 2, on the node-local tier .* did not reach the shared tier"):
        ckpt.wait_for_commit()
    shared = CkptLayout.at(faultfs.path("shared"))
    assert shared.list_epochs() == [] and shared.work_dirs() == []
    faultfs.enospc_after(None)
    ckpt.wait_for_commit()  # the flush drains it once the shared tier is back
    assert shared.linked_epoch(shared.last) == 2
    verify_checkpoint(shared.epoch_dir(2), True)
    ckpt.release_writer()
