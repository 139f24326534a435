"""The .npz writer and reader of the training state: NumPy-compatible, aligned, and torn files refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from candle_restart.ckpt import CorruptCheckpointError
from candle_restart.ckpt.sink import FileSink
from candle_restart.keras.npz import ALIGNMENT, read_npz, write_npz

ARRAYS: dict[str, np.ndarray] = {
    "model/0": np.arange(12, dtype=np.float32).reshape(3, 4),
    "model/1": np.array(7, dtype=np.int64),
    "model/2": np.zeros((0, 5), dtype=np.float64),
    "optimizer/0": np.asfortranarray(np.arange(6, dtype=np.float16).reshape(2, 3)),
    "__manifest__": np.array(json.dumps({"model": []})),
}


@pytest.mark.parametrize("streamed", [True, False])
def test_round_trip_through_numpy_and_ours(tmp_path: Path, streamed: bool) -> None:
    path = tmp_path / "s.npz"
    if streamed:  # a FileSink cannot seek: members get data descriptors
        with FileSink(path, checksum=True) as sink:
            write_npz(sink, ARRAYS)
    else:
        with open(path, "wb") as f:
            write_npz(f, ARRAYS)
    ours = read_npz(path)
    with np.load(path) as theirs:
        assert sorted(theirs.files) == sorted(ARRAYS) == sorted(ours)
        for name, array in ARRAYS.items():
            for loaded in (theirs[name], ours[name]):
                assert loaded.dtype == array.dtype and loaded.shape == array.shape
                assert np.array_equal(loaded, array)
    assert all(a.ctypes.data % ALIGNMENT == 0 for a in ours.values() if a.nbytes and a.dtype.kind != "U")


def test_a_flipped_byte_or_a_cut_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    with open(path, "wb") as f:
        write_npz(f, {"a": np.arange(1000, dtype=np.float64)})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="fails its CRC-32"):
        read_npz(path)
    assert read_npz(path, check_crc=False)["a"].shape == (1000,)  # the caller verified the file's own CRC
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(CorruptCheckpointError, match=r"cannot be read as \.npz"):
        read_npz(path)


def _forge(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def test_a_forged_header_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    with open(path, "wb") as f:
        write_npz(f, {"a": np.arange(8, dtype=np.float64)})
    raw = path.read_bytes()
    at = raw.index(b"(8,), }")
    forged = b"(99999999999999,), }"  # 800 TB of float64, written over the header's space padding
    assert raw[at + 7 : at + len(forged)] == b" " * (len(forged) - 7)
    _forge(path, at, forged)
    with pytest.raises(CorruptCheckpointError, match="describes another size"):
        read_npz(path)


def test_every_single_bit_flip_is_refused_or_harmless(tmp_path: Path) -> None:
    """No flip may escape as another exception (MemoryError, NotImplementedError, ...)."""
    path = tmp_path / "s.npz"
    with open(path, "wb") as f:
        write_npz(f, {"a": np.arange(3, dtype=np.float32), "__manifest__": np.array("{}")})
    good = path.read_bytes()
    refused = 0
    for bit in range(len(good) * 8):
        flipped = bytearray(good)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        try:
            read_npz(path)
        except CorruptCheckpointError:
            refused += 1
    assert refused > len(good) * 4  # most flips are caught (names and padding are not covered by CRCs)
