"""Two checkpoint tiers (``ckpt_local_directory``): commit node-locally, drain to ``ckpt_directory``.

Framework-free, through the core's `CandleCkpt` with the bytes backend of tests/helpers; real
files, real threads.  The writer in a process of its own, killed and signalled, is in
test_tier_processes.py.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest

from candle_restart.ckpt import (
    CkptLayout,
    CommitError,
    ParamError,
    parse_params,
    verify_checkpoint,
)
from candle_restart.ckpt.drain import local_root
from candle_restart.ckpt.pacing import Pacer
from candle_restart.cli import main as cli_main
from candle_restart.records.localtier import (
    LOCAL_TIER_FILE,
    LocalTierError,
    describe_local_tier,
    read_local_tier,
)
from candle_restart.runtime.deadline import End
from candle_restart.runtime.preempt import PreemptionRequest
from tests.faultfs.control import FaultFS
from tests.helpers import BytesCkpt, BytesModel


def _params(tmp_path: Path, local: str = "local", **extra: object) -> dict[str, object]:
    params: dict[str, object] = {
        "epochs": 10,
        "ckpt_directory": str(tmp_path / "shared"),
        "ckpt_local_directory": str(tmp_path / local),
        "ckpt_save_best": False,
        "ckpt_keep_limit": 10,
        "ckpt_checksum": True,
    }
    return {**params, **extra}


def _train(ckpt: BytesCkpt, epochs: range, metrics: list[float] | None = None, join: bool = True) -> None:
    """Commit ``epochs`` (0-based) with payloads naming the epoch; wait for each drain to settle."""
    assert ckpt.drainer is not None and isinstance(ckpt.model, BytesModel)
    for epoch in epochs:
        ckpt.model.payload = f"epoch {epoch + 1}".encode() * 1000
        ckpt.ckpt_epoch(epoch, "-", None if metrics is None else metrics[epoch])
        if join:
            ckpt.drainer.join()


def _shared(tmp_path: Path) -> CkptLayout:
    return CkptLayout.at(tmp_path / "shared")


def test_drains_every_nth_checkpoint_and_always_the_final_one(tmp_path: Path) -> None:
    ckpt = BytesCkpt(_params(tmp_path, epochs=7, ckpt_drain_interval=3), logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(7))
    shared = _shared(tmp_path)
    assert shared.list_epochs() == [3, 6, 7]
    assert shared.linked_epoch(shared.last) == 7
    for epoch in shared.list_epochs():
        verify_checkpoint(shared.epoch_dir(epoch), True)
    assert ckpt.layout.root == local_root(tmp_path / "local", shared.root)
    assert len(ckpt.layout.list_epochs()) <= 2  # the local tier keeps few
    record = read_local_tier(shared.root / LOCAL_TIER_FILE)
    assert record is not None and (record.epoch, record.drained) == (7, True)
    assert record.path == str(ckpt.layout.root)
    ckpt.release_writer()  # flushes: the final checkpoint is on the shared tier, the local tier goes
    assert not ckpt.layout.root.exists() and shared.linked_epoch(shared.last) == 7


def test_every_best_is_drained_and_the_shared_best_link_follows(tmp_path: Path) -> None:
    metrics = [5.0, 4.0, 6.0, 7.0, 3.0, 8.0]
    params = _params(tmp_path, epochs=6, ckpt_drain_interval=100, ckpt_save_best=True)
    ckpt = BytesCkpt(params, logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(6), metrics)
    shared = _shared(tmp_path)
    assert shared.list_epochs() == [1, 2, 5, 6]  # the bests and the final one
    assert (shared.linked_epoch(shared.best), shared.linked_epoch(shared.last)) == (5, 6)
    ckpt.release_writer()


def test_a_slow_shared_tier_skips_checkpoints_but_never_the_best(tmp_path: Path, faultfs: FaultFS) -> None:
    """Commits come faster than the shared tier drains: waiting drains are superseded by newer
    ones, except a best (by a non-best); no commit waits for a drain, only the end does.

    The drains alone are slowed (each fsync in their work directories takes 1.5 s): a bandwidth
    throttle of the whole shared tier would also hold up the training thread's small appends
    to ``events.jsonl``, which lives there, behind the drain's bytes.
    """
    faultfs.delay(1.5, "shared/work-drain-*", ops=["fsync"])  # a drain takes seconds; six commits far less
    params = _params(tmp_path, epochs=6, ckpt_save_best=True, ckpt_directory=str(faultfs.path("shared")))
    ckpt = BytesCkpt(params, logger=None)
    model = BytesModel()
    ckpt.set_model(model)
    for epoch, metric in enumerate([5.0, 4.0, 6.0, 7.0, 8.0, 9.0]):
        model.payload = os.urandom(300_000)
        ckpt.ckpt_epoch(epoch, "-", metric)
    assert ckpt.drainer is not None and ckpt.drainer.drains == 0  # epoch 1 is still being copied
    ckpt.wait_for_commit()
    shared = CkptLayout.at(faultfs.path("shared"))
    assert shared.list_epochs() == [1, 2, 6]  # the first, the best waiting behind it, the final one
    assert (shared.linked_epoch(shared.best), shared.linked_epoch(shared.last)) == (2, 6)
    ckpt.release_writer()


def test_a_full_shared_tier_never_stops_training_and_flush_says_so(tmp_path: Path, faultfs: FaultFS) -> None:
    ckpt = BytesCkpt(_params(tmp_path, ckpt_directory=str(faultfs.path("shared"))), logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(1))
    shared = CkptLayout.at(faultfs.path("shared"))
    faultfs.enospc_after(0)
    _train(ckpt, range(1, 3))  # local commits go on; their drains fail and are logged
    assert shared.list_epochs() == [1] and shared.linked_epoch(shared.last) == 1
    with pytest.raises(
        CommitError, match=r"epoch 3, on the node-local tier .* did not reach the shared tier"
    ):
        ckpt.wait_for_commit()
    assert shared.linked_epoch(shared.last) == 1
    faultfs.enospc_after(None)
    ckpt.wait_for_commit()
    assert shared.linked_epoch(shared.last) == 3
    verify_checkpoint(shared.epoch_dir(3), True)
    ckpt.release_writer()


def test_a_local_checkpoint_that_fails_its_recorded_crc_never_reaches_the_shared_last(tmp_path: Path) -> None:
    ckpt = BytesCkpt(_params(tmp_path, ckpt_drain_interval=100), logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(2))
    ckpt.wait_for_commit()
    shared = _shared(tmp_path)
    assert shared.linked_epoch(shared.last) == 2
    _train(ckpt, range(2, 3))
    model_file = ckpt.layout.epoch_dir(3) / "model.bin"
    data = bytearray(model_file.read_bytes())
    data[100] ^= 0xFF  # same size, other bytes: only the CRC-32 can tell
    model_file.write_bytes(bytes(data))
    with pytest.raises(CommitError, match="checksum mismatch"):
        ckpt.wait_for_commit()
    assert shared.linked_epoch(shared.last) == 2 and shared.list_epochs() == [2]
    with pytest.raises(CommitError, match="checksum mismatch"):
        ckpt.release_writer()  # still not on the shared tier; the lease is given back all the same
    assert not shared.writer_lock.exists()


def test_shared_keep_policy_applies_to_the_shared_tier(tmp_path: Path) -> None:
    ckpt = BytesCkpt(_params(tmp_path, epochs=8, ckpt_keep_limit=2), logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(8))
    assert _shared(tmp_path).list_epochs() == [7, 8]
    ckpt.release_writer()


def test_flush_drains_the_newest_checkpoint_the_interval_skipped(tmp_path: Path) -> None:
    ckpt = BytesCkpt(_params(tmp_path, ckpt_drain_interval=100), logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(3))
    shared = _shared(tmp_path)
    assert shared.list_epochs() == []
    assert "only node-local: epochs/003" in (describe_local_tier(shared.root) or "")
    ckpt.wait_for_commit()
    assert shared.linked_epoch(shared.last) == 3
    assert describe_local_tier(shared.root) is None
    ckpt.release_writer()


def _die_without_flush(ckpt: BytesCkpt) -> None:
    """End a writer as a killed process would: the drains in flight settle, the lease goes, no flush."""
    assert ckpt.drainer is not None
    ckpt.drainer.join()
    del ckpt
    gc.collect()  # the writer lease's finalizer gives the lease back


def test_a_vanished_local_tier_restarts_from_the_shared_tier(tmp_path: Path) -> None:
    first = BytesCkpt(_params(tmp_path, local="node-a"), logger=None)
    first.set_model(BytesModel())
    _train(first, range(3))
    first.wait_for_commit()
    first.release_writer()
    # A new node: its ckpt_local_directory holds nothing of this run.
    second = BytesCkpt(_params(tmp_path, local="node-b"), logger=None)
    model = BytesModel()
    J = second.restart(model)
    assert J is not None and J["epoch"] == 3
    assert model.payload == b"epoch 3" * 1000
    second.release_writer()


def test_a_newer_local_checkpoint_wins_and_is_drained_at_restart(tmp_path: Path) -> None:
    first = BytesCkpt(_params(tmp_path, ckpt_drain_interval=2), logger=None)
    first.set_model(BytesModel())
    _train(first, range(5))  # drained: 2 and 4; epoch 5 only on the node
    shared = _shared(tmp_path)
    assert shared.linked_epoch(shared.last) == 4
    _die_without_flush(first)
    second = BytesCkpt(_params(tmp_path, ckpt_drain_interval=2), logger=None)
    model = BytesModel()
    J = second.restart(model)
    assert J is not None and J["epoch"] == 5 and model.payload == b"epoch 5" * 1000
    second.wait_for_commit()
    assert shared.linked_epoch(shared.last) == 5
    verify_checkpoint(shared.epoch_dir(5), True)
    second.release_writer()


def test_a_stale_local_tier_loses_to_a_newer_shared_checkpoint(tmp_path: Path) -> None:
    node_a = BytesCkpt(_params(tmp_path, local="node-a"), logger=None)
    node_a.set_model(BytesModel())
    _train(node_a, range(2))
    node_a.wait_for_commit()
    node_a.release_writer()
    node_b = BytesCkpt(_params(tmp_path, local="node-b"), logger=None)
    node_b.restart(BytesModel())
    node_b.set_model(BytesModel())
    _train(node_b, range(2, 4))
    node_b.wait_for_commit()
    node_b.release_writer()
    again_a = BytesCkpt(_params(tmp_path, local="node-a"), logger=None)
    model = BytesModel()
    J = again_a.restart(model)
    assert J is not None and J["epoch"] == 4 and model.payload == b"epoch 4" * 1000
    again_a.release_writer()


def test_ckpt_command_says_when_the_newest_checkpoint_is_only_node_local(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = BytesCkpt(_params(tmp_path, ckpt_drain_interval=2), logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(3))
    _die_without_flush(ckpt)
    shared = _shared(tmp_path)
    assert cli_main(["ckpt", str(shared.root)]) == 0
    out = capsys.readouterr().out
    assert "newest checkpoint only node-local: epochs/003" in out
    assert str(local_root(tmp_path / "local", shared.root)) in out


def test_a_malformed_local_tier_record_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / LOCAL_TIER_FILE
    record = {"host": "n", "path": "/p", "epoch": "seven", "time": "t", "drained": False}
    path.write_text(json.dumps(record))
    with pytest.raises(LocalTierError) as caught:
        read_local_tier(path)
    assert str(caught.value).startswith(f"{path}: epoch: must be an integer")
    assert describe_local_tier(tmp_path) == f"{caught.value} (ignored)"
    path.write_text("{")
    with pytest.raises(LocalTierError, match=f"^{path}: is not valid JSON"):
        read_local_tier(path)


def test_params_of_the_local_tier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_SCRATCH", str(tmp_path))
    assert parse_params({"epochs": 1}).local_directory is None
    assert parse_params({"epochs": 1, "ckpt_local_directory": "none"}).local_directory is None
    settings = parse_params(
        {"epochs": 1, "ckpt_local_directory": "$NODE_SCRATCH/ck", "ckpt_drain_interval": "0"}
    )
    assert (settings.local_directory, settings.drain_interval) == (f"{tmp_path}/ck", 0)
    monkeypatch.delenv("NODE_SCRATCH")
    with pytest.raises(ParamError, match="ckpt_local_directory: must be a directory whose variables"):
        parse_params({"epochs": 1, "ckpt_local_directory": "$NODE_SCRATCH/ck"})
    with pytest.raises(ParamError, match="ckpt_drain_interval: must be an integer >= 0"):
        parse_params({"epochs": 1, "ckpt_drain_interval": -1})


def test_an_unusable_local_directory_is_one_line_naming_its_key_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ParamError, match=r"^gParameters: ckpt_local_directory: .* is not a directory$"):
        BytesCkpt(_params(tmp_path, local="a-file/under"), logger=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_without_a_local_tier_nothing_changes(tmp_path: Path) -> None:
    params = _params(tmp_path)
    del params["ckpt_local_directory"]
    ckpt = BytesCkpt(params, logger=None)
    ckpt.set_model(BytesModel(b"w"))
    ckpt.ckpt_epoch(0, "-", None)
    assert ckpt.drainer is None and ckpt.layout == _shared(tmp_path)
    assert _shared(tmp_path).list_epochs() == [1]
    assert not (tmp_path / "shared" / LOCAL_TIER_FILE).exists()
    ckpt.release_writer()


def test_the_halt_before_the_walltime_leaves_time_for_the_slowest_drain(
    tmp_path: Path, preemption: PreemptionRequest
) -> None:
    """The margin is (slowest commit + slowest drain) x 3 + ckpt_halt_seconds + a step: the final
    checkpoint is committed and drained before the allocation ends. The drainer's own measurement
    reaches the pacer of a two-tier callback."""
    ckpt = BytesCkpt(_params(tmp_path), logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(1))
    assert ckpt.drainer is not None and ckpt.drainer.slowest > 0
    assert ckpt.pacer.slowest_drain is not None and ckpt.pacer.slowest_drain() == ckpt.drainer.slowest
    ckpt.release_writer()

    now = [1000.0]
    lines: list[str] = []
    settings = parse_params({"epochs": 1, "ckpt_halt_seconds": 10})
    pacer = Pacer(
        settings,
        lines.append,
        clock=lambda: now[0],
        wall=lambda: now[0],
        find=lambda _s: End(1200.0, "ckpt_halt_at"),
        slowest_drain=lambda: 10.0,
    )
    pacer.start()
    started = pacer.saving()
    pacer.saved()
    pacer.committed(started - 20.0)  # a 20 s commit
    while not preemption.requested:
        now[0] += 1.0
        pacer.batch_end()
    left = 1200.0 - now[0]
    assert 100.0 < left <= 101.0  # (20 + 10) x 3 + 10 + the 1 s step; without the drain: 71
    assert any("(slowest commit 20.000 s + slowest drain 10.000 s) x 3 + 10 s" in line for line in lines)


def test_events_jsonl_is_on_the_shared_tier_with_each_node_local_commit_and_its_size(tmp_path: Path) -> None:
    ckpt = BytesCkpt(_params(tmp_path, ckpt_drain_interval=100), logger=None)
    ckpt.set_model(BytesModel())
    _train(ckpt, range(2))  # nothing drained yet: the commits exist only on the node-local tier
    shared = _shared(tmp_path)
    assert shared.list_epochs() == [] and not (ckpt.layout.root / "events.jsonl").exists()
    events = [json.loads(line) for line in (shared.root / "events.jsonl").read_text().splitlines()]
    commits = [(e["epoch"], e["bytes"]) for e in events if e["kind"] == "commit"]
    sizes = [sum(p.stat().st_size for p in ckpt.layout.epoch_dir(n).iterdir()) for n in (1, 2)]
    assert commits == [(1, sizes[0]), (2, sizes[1])]
    ckpt.release_writer()


def test_with_checksums_off_a_drain_checks_its_copy_by_crcs_recorded_while_writing(
    tmp_path: Path, faultfs: FaultFS
) -> None:
    """Two tiers and ``ckpt_checksum`` off: each file's CRC-32 is recorded all the same (computed
    while writing), so a drain verifies its copy without reading it back from the shared tier
    (the exit after a signal costs one pass at the shared tier's speed, not two), and restart
    can verify the shared copy."""
    shared_root = faultfs.path("shared")
    params = _params(
        tmp_path, epochs=3, ckpt_checksum=False, ckpt_drain_interval=1, ckpt_directory=str(shared_root)
    )
    ckpt = BytesCkpt(params, logger=None)
    model = BytesModel()
    ckpt.set_model(model)
    before = faultfs.stats()["bytes_read"]
    for epoch in range(3):
        model.payload = os.urandom(2_000_000)
        ckpt.ckpt_epoch(epoch, "-", None)
    ckpt.wait_for_commit()
    read = faultfs.stats()["bytes_read"] - before
    assert read < 2_000_000, f"{read} bytes read back from the shared tier for three drains"
    shared = CkptLayout.at(shared_root)
    drained = shared.list_epochs()  # a drain waiting behind a slower one may be superseded
    assert drained[-1] == 3 and set(drained) <= {1, 2, 3}
    for epoch in drained:
        info = json.loads((shared.epoch_dir(epoch) / "ckpt-info.json").read_text())
        assert all(entry["crc32"] not in (None, "__DISABLED__") for entry in info["files"].values())
        verify_checkpoint(shared.epoch_dir(epoch), True)
    ckpt.release_writer()
