"""The flush after a signal abandons an older drain in flight, and the copy is verified by its CRC.

Real threads and files: the drainer's own thread copies real checkpoints; a hold point
(the drainer's check between chunks, wrapped) parks the drain of epoch 1 until `flush`
has marked it abandoned, so the order of events is fixed, with no sleeps.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout
from candle_restart.ckpt.checksum import copy_verified
from candle_restart.ckpt.layout import INFO_FILE
from candle_restart.errors import CkptError, CorruptCheckpointError
from candle_restart.records.ckptinfo import FileEntry, read_ckpt_info
from tests.helpers import BytesCkpt, BytesModel

DEADLINE = 60.0


def _params(tmp_path: Path) -> dict[str, object]:
    return {
        "epochs": 10,
        "ckpt_directory": str(tmp_path / "shared"),
        "ckpt_local_directory": str(tmp_path / "local"),
        "ckpt_save_best": False,
        "ckpt_keep_limit": 10,
        "ckpt_checksum": True,
        "ckpt_drain_interval": 1,
    }


def _checks_of(epoch_dir: Path) -> int:
    """How many checks a drain of ``epoch_dir`` makes: two per small file (before its one chunk and
    before the read that finds its end), and one before the commit."""
    info = read_ckpt_info(epoch_dir / INFO_FILE)
    assert info.files is not None and all(e.size < 4 * 1024 * 1024 for e in info.files.values())
    return 2 * (len(info.files) - 1) + 1


@pytest.mark.parametrize("hold_at", ["first chunk", "before commit"])
def test_flush_abandons_an_older_drain_in_flight_and_publishes_only_the_newest(
    tmp_path: Path, hold_at: str
) -> None:
    lines: list[str] = []
    ckpt = BytesCkpt(_params(tmp_path), logger=None)
    ckpt.set_model(BytesModel())
    drainer = ckpt.drainer
    assert drainer is not None and isinstance(ckpt.model, BytesModel)
    drainer.log = lines.append
    original: Callable[..., None] = drainer._check
    calls: list[int] = []
    reached: list[bool] = []

    def held(job: object) -> None:
        epoch = getattr(job, "epoch")  # noqa: B009 (the drainer's private job type)
        if epoch == 1:
            calls.append(1)
            due = 1 if hold_at == "first chunk" else _checks_of(ckpt.layout.epoch_dir(1))
            if len(calls) == due:
                reached.append(True)
                deadline = time.monotonic() + DEADLINE
                while not getattr(job, "abandon") and time.monotonic() < deadline:  # noqa: B009
                    time.sleep(0.005)  # polls the condition flush sets; not a synchronisation by time
        original(job)

    drainer._check = held  # type: ignore[method-assign]
    ckpt.model.payload = b"epoch 1" * 5000
    ckpt.ckpt_epoch(0, "-", None)
    deadline = time.monotonic() + DEADLINE
    while not reached and time.monotonic() < deadline:
        time.sleep(0.005)
    assert reached, "the drain of epoch 1 never reached its hold point"
    ckpt.model.payload = b"epoch 2" * 5000
    ckpt.ckpt_epoch(1, "-", None)  # epoch 2: queued behind the held drain
    ckpt.wait_for_commit()  # the flush: must abandon epoch 1's drain, then drain epoch 2

    shared = CkptLayout.at(tmp_path / "shared")
    assert shared.list_epochs() == [2] and shared.linked_epoch(shared.last) == 2
    assert (shared.last / "model.bin").read_bytes() == b"epoch 2" * 5000
    assert shared.work_dirs() == [] and not list(shared.root.glob("work*"))
    assert not [p for p in ckpt.layout.root.iterdir() if p.name.startswith(".drain-")]
    assert drainer.drains == 1
    assert any("epoch 1 abandoned" in line for line in lines), lines
    ckpt.release_writer()


def test_a_drain_the_flush_does_not_need_is_not_abandoned(tmp_path: Path) -> None:
    """The newest checkpoint in flight already: the flush waits for it, abandons nothing."""
    ckpt = BytesCkpt(_params(tmp_path), logger=None)
    ckpt.set_model(BytesModel())
    assert isinstance(ckpt.model, BytesModel) and ckpt.drainer is not None
    ckpt.model.payload = b"only" * 5000
    ckpt.ckpt_epoch(0, "-", None)
    ckpt.wait_for_commit()
    shared = CkptLayout.at(tmp_path / "shared")
    assert shared.list_epochs() == [1] and ckpt.drainer.drains == 1
    ckpt.release_writer()


def _source(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return path


def test_copy_checked_by_the_crc_computed_while_copying(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40000  # several chunks
    entry = FileEntry(len(data), str(zlib.crc32(data)))
    assert copy_verified(_source(tmp_path, data), tmp_path / "out" / "a", entry) == len(data)
    assert (tmp_path / "out" / "a").read_bytes() == data


def test_a_copy_whose_bytes_differ_from_the_recorded_crc_is_refused(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40000
    entry = FileEntry(len(data), str(zlib.crc32(data)))
    bad = bytearray(data)
    bad[5_000_000] ^= 0x01  # same size: only the CRC can tell
    with pytest.raises(CorruptCheckpointError, match="checksum mismatch"):
        copy_verified(_source(tmp_path, bytes(bad)), tmp_path / "b", entry)
    with pytest.raises(CorruptCheckpointError, match=r"ckpt-info\.json recorded 10"):
        copy_verified(_source(tmp_path, b"x" * 9), tmp_path / "c", FileEntry(10, None))


def test_without_a_recorded_crc_the_copy_is_read_back(tmp_path: Path) -> None:
    data = b"candle" * 1000
    assert copy_verified(_source(tmp_path, data), tmp_path / "d", None) == len(data)
    assert copy_verified(_source(tmp_path, data), tmp_path / "e", FileEntry(len(data), None)) == len(data)


def test_an_abandoned_copy_raises_from_the_check_between_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40000
    seen: list[int] = []

    def stop() -> None:
        seen.append(1)
        if len(seen) == 2:
            raise CkptError("x", None, "abandoned")

    with pytest.raises(CkptError, match="abandoned"):
        copy_verified(_source(tmp_path, data), tmp_path / "f", None, stop)
    assert len(seen) == 2
