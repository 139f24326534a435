"""The header of a safetensors file: where each tensor of a PyTorch checkpoint's ``model.h5`` lies.

The format is Hugging Face's safetensors: 8 bytes (little-endian ``N``), ``N`` bytes of a JSON
object, then the tensors' bytes.  The object maps each tensor's name to ``{"dtype", "shape",
"data_offsets": [begin, end]}`` (offsets from the start of the data) and may hold
``"__metadata__"``, an object of strings.  The data has no holes: the tensors, ordered by offset,
cover it from its first byte to the file's last.  Loading it runs no code (unlike a pickle), and
any safetensors reader (``safetensors.torch.load_file``) reads the files written here.

`layout` orders the tensors by element size, largest first, and `encode_header` pads the header
with spaces so the data starts on a 64-byte boundary: every tensor is then aligned to its element
size and can be viewed in place.  `decode_header` is the one reader: a header of another shape,
an unknown dtype, a size that does not match the shape, overlapping tensors or a hole is a
`CorruptCheckpointError` naming the file, the tensor and the problem; the length is checked
against `MAX_HEADER` and the file's size before anything is read.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from candle_restart.errors import CorruptCheckpointError
from candle_restart.records.jsonio import JsonError, loads, utf8
from candle_restart.records.jsontypes import is_int

# safetensors' dtype names and their element sizes in bytes.
DTYPE_SIZES: Mapping[str, int] = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "C64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
MAX_HEADER = 100_000_000  # safetensors' own limit on N
DATA_ALIGNMENT = 64
METADATA = "__metadata__"
_PREFIX = struct.Struct("<Q")
PREFIX_SIZE = _PREFIX.size


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the file: its name, safetensors dtype, shape and byte range in the data."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class TensorHeader:
    """A decoded header: the tensors by name (in data order), the metadata, where the data starts."""

    tensors: Mapping[str, TensorEntry]
    metadata: Mapping[str, str]
    data_start: int


def nbytes_of(dtype: str, shape: Iterable[int]) -> int:
    return DTYPE_SIZES[dtype] * math.prod(shape)


def layout(specs: Iterable[tuple[str, str, tuple[int, ...]]]) -> list[TensorEntry]:
    """Entries for ``(name, dtype, shape)`` in the order their bytes are written (see the module docstring)."""
    ordered = sorted(specs, key=lambda s: -DTYPE_SIZES[s[1]])  # stable: equal sizes keep their order
    entries: list[TensorEntry] = []
    offset = 0
    for name, dtype, shape in ordered:
        size = nbytes_of(dtype, shape)
        entries.append(TensorEntry(name, dtype, tuple(shape), offset, offset + size))
        offset += size
    return entries


def encode_header(entries: Iterable[TensorEntry], metadata: Mapping[str, str]) -> bytes:
    """The bytes before the data: the length, the JSON header, spaces up to a 64-byte boundary."""
    header: dict[str, object] = {METADATA: dict(metadata)} if metadata else {}
    for e in entries:
        header[e.name] = {"dtype": e.dtype, "shape": list(e.shape), "data_offsets": [e.begin, e.end]}
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    padded = len(text) + (-(PREFIX_SIZE + len(text)) % DATA_ALIGNMENT)
    return _PREFIX.pack(padded) + text.ljust(padded, b" ")


def header_length(prefix: bytes, file_size: int, where: str) -> int:
    """``N`` from the first 8 bytes of a file of ``file_size`` bytes; checked before it is read."""
    if len(prefix) < PREFIX_SIZE:
        raise CorruptCheckpointError(where, None, f"is {file_size} bytes: too short for a tensor file")
    (n,) = _PREFIX.unpack(prefix[:PREFIX_SIZE])
    if n < 2 or n > MAX_HEADER or PREFIX_SIZE + n > file_size:
        raise CorruptCheckpointError(
            where, None, f"is not a tensor file: its header length {n} does not fit its {file_size} bytes"
        )
    return int(n)


def decode_header(text: bytes, file_size: int, where: str) -> TensorHeader:
    """The header ``text`` (the ``N`` bytes after the length) of a file of ``file_size`` bytes."""
    try:
        raw = loads(utf8(text))
    except (JsonError, ValueError) as exc:
        raise CorruptCheckpointError(where, None, f"its tensor header is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise CorruptCheckpointError(where, None, "its tensor header is not a JSON object")
    metadata = raw.pop(METADATA, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CorruptCheckpointError(where, METADATA, "must be an object of strings")
    entries = sorted((_entry(name, value, where) for name, value in raw.items()), key=lambda e: e.begin)
    data_start = PREFIX_SIZE + len(text)
    offset = 0
    for e in entries:
        if e.begin != offset:
            problem = "overlaps the tensor before it" if e.begin < offset else "leaves a hole before it"
            raise CorruptCheckpointError(where, e.name, f"data_offsets {problem}")
        offset = e.end
    if data_start + offset != file_size:
        raise CorruptCheckpointError(
            where, None, f"its tensors end at byte {data_start + offset} but the file has {file_size}"
        )
    return TensorHeader({e.name: e for e in entries}, dict(metadata), data_start)


def _entry(name: str, value: object, where: str) -> TensorEntry:
    if not isinstance(value, dict):
        raise CorruptCheckpointError(where, name, "must be an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise CorruptCheckpointError(where, name, f"dtype {dtype!r} is not one of {sorted(DTYPE_SIZES)}")
    if not isinstance(shape, list) or not all(is_int(n) and n >= 0 for n in shape):
        raise CorruptCheckpointError(where, name, f"shape must be a list of sizes, got {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(is_int(n) and n >= 0 for n in offsets)
        or offsets[0] > offsets[1]
    ):
        raise CorruptCheckpointError(where, name, f"data_offsets must be [begin, end], got {offsets!r}")
    begin, end = int(offsets[0]), int(offsets[1])
    if end - begin != nbytes_of(dtype, shape):
        raise CorruptCheckpointError(
            where,
            name,
            f"holds {end - begin} bytes but a {dtype} of shape {shape} needs {nbytes_of(dtype, shape)}",
        )
    return TensorEntry(name, dtype, tuple(int(n) for n in shape), begin, end)
