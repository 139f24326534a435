"""``local-tier.json``: when the shared tier's newest checkpoint supersedes the record (a table),
and what its readers are told (`describe_local_tier`, real files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from candle_restart.records.localtier import (
    LOCAL_TIER_FILE,
    LocalTierRecord,
    Progress,
    describe_local_tier,
    read_local_tier,
)
from candle_restart.runtime.fsio import atomic_write_bytes


def _record(epoch: int, batch: int | None, drained: bool = False) -> LocalTierRecord:
    return LocalTierRecord("node-a", "/dev/shm/x", epoch, "2026-12-07T00:00:00Z", drained, batch)


# record (epoch directory, batch), the shared tier's newest (None: none), superseded?
TABLE: list[tuple[tuple[int, int | None], Progress | None, bool]] = [
    ((3, None), None, False),  # the shared tier has nothing
    ((3, None), (2, None), False),  # an older epoch end
    ((3, None), (3, 40), False),  # a batch of the same epoch comes before its end
    ((3, None), (3, None), True),  # the same checkpoint
    ((3, None), (4, 1), True),  # a stop's checkpoint in the next epoch
    ((3, 10), (3, 9), False),
    ((3, 10), (3, 10), True),
    ((3, 10), (3, 11), True),  # a stop later in the same epoch: the same epochs/003, further along
    ((3, 10), (3, None), True),  # the epoch's end
    ((3, 10), (2, None), False),
]


@pytest.mark.parametrize(("record", "shared", "expected"), TABLE)
def test_superseded(record: tuple[int, int | None], shared: Progress | None, expected: bool) -> None:
    assert _record(*record).superseded(shared) is expected


def test_readers_hear_of_a_node_local_checkpoint_until_the_shared_tier_has_one_as_new(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / LOCAL_TIER_FILE, _record(5, 20).to_bytes())
    assert read_local_tier(tmp_path / LOCAL_TIER_FILE) == _record(5, 20)
    assert "only node-local: epochs/005 on node-a" in (describe_local_tier(tmp_path) or "")
    assert "epochs/005" in (describe_local_tier(tmp_path, (5, 19)) or "")
    assert describe_local_tier(tmp_path, (5, 30)) is None  # a stop committed on the shared tier itself
    atomic_write_bytes(tmp_path / LOCAL_TIER_FILE, _record(5, 20, drained=True).to_bytes())
    assert describe_local_tier(tmp_path) is None


def test_a_record_written_before_batch_existed_reads_as_an_epoch_end(tmp_path: Path) -> None:
    path = tmp_path / LOCAL_TIER_FILE
    path.write_text('{"host": "n", "path": "/p", "epoch": 7, "time": "t", "drained": false}\n')
    record = read_local_tier(path)
    assert record is not None and record.batch is None
    assert describe_local_tier(tmp_path, (7, 99)) is not None and describe_local_tier(tmp_path, (7, None)) is None
