"""The safetensors header of a PyTorch checkpoint's ``model.h5``: written aligned, read strictly."""

from __future__ import annotations

import json
import struct

import pytest

from candle_restart.errors import CorruptCheckpointError
from candle_restart.records import tensorfile


def _file(header: dict[str, object], data_bytes: int) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(data_bytes)


def _decode(blob: bytes) -> tensorfile.TensorHeader:
    n = tensorfile.header_length(blob[:8], len(blob), "m.h5")
    return tensorfile.decode_header(blob[8 : 8 + n], len(blob), "m.h5")


def test_layout_orders_by_element_size_and_the_data_starts_aligned() -> None:
    entries = tensorfile.layout(
        [("b", "U8", (3,)), ("a", "F32", (2, 2)), ("c", "F64", ()), ("d", "F16", (5,))]
    )
    assert [e.name for e in entries] == ["c", "a", "d", "b"]
    assert all(e.begin % tensorfile.DTYPE_SIZES[e.dtype] == 0 for e in entries)
    head = tensorfile.encode_header(entries, {"format": "pt"})
    assert len(head) % 64 == 0
    blob = head + bytes(entries[-1].end)
    decoded = _decode(blob)
    assert decoded.data_start == len(head) and decoded.metadata == {"format": "pt"}
    assert list(decoded.tensors.values()) == entries


@pytest.mark.parametrize(
    "header, data, key, problem",
    [
        ({"t": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}, 4, "t", "dtype 'F33' is not one of"),
        (
            {"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}},
            4,
            "t",
            "holds 4 bytes but a F32 of shape [2] needs 8",
        ),
        (
            {"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
            4,
            "t",
            "shape must be a list of sizes",
        ),
        ({"t": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}, 4, "t", "leaves a hole before it"),
        (
            {
                "t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                "u": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]},
            },
            4,
            "u",
            "overlaps the tensor before it",
        ),
        ({"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, 9, None, "its tensors end at byte"),
        ({"__metadata__": {"a": 1}}, 0, "__metadata__", "must be an object of strings"),
    ],
)
def test_a_malformed_header_is_one_line_naming_the_tensor(
    header: dict[str, object], data: int, key: str | None, problem: str
) -> None:
    with pytest.raises(CorruptCheckpointError) as caught:
        _decode(_file(header, data))
    assert caught.value.where == "m.h5" and caught.value.key == key and problem in caught.value.problem
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "blob", [b"", b"\x01\x00", struct.pack("<Q", 10**12) + b"{}", struct.pack("<Q", 50) + b"{}"]
)
def test_a_length_that_does_not_fit_is_refused_before_reading(blob: bytes) -> None:
    with pytest.raises(CorruptCheckpointError):
        tensorfile.header_length(blob[:8], len(blob), "m.h5")


def test_a_header_that_is_not_json_is_one_line() -> None:
    blob = struct.pack("<Q", 4) + b"{{{{"
    with pytest.raises(CorruptCheckpointError, match=r"m\.h5: its tensor header is not JSON"):
        _decode(blob)
