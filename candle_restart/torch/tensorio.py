"""A PyTorch checkpoint's tensors file (``model.h5``): written once from host buffers, read without running code.

`write_tensors` writes the safetensors layout of `candle_restart.records.tensorfile` into a
checkpoint file sink: the header, then each tensor's bytes straight from its (host, contiguous)
buffer, so the sink's CRC-32 is computed on the same pass and nothing is copied again.
`read_tensors` reads it back into fresh CPU tensors, one read per tensor (``map_location`` is the
CPU: ``load_state_dict`` then moves each value to where the live object keeps it).

CANDLE's own ``CandleCkptPyTorch`` wrote ``model.h5`` with ``torch.save`` (a pickle, which runs
code when loaded).  `read_model_file` still reads such a file, through
``torch.load(weights_only=True)``, whose unpickler only builds tensors and plain containers: a
file whose pickle would call anything else is refused with one line naming it and the global
it asked for.  It never unpickles with ``weights_only=False``.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from candle_restart.ckpt.sink import FileSink
from candle_restart.errors import CheckpointIOError, CorruptCheckpointError, is_transient
from candle_restart.records import tensorfile

TORCH_DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.int64: "I64",
    torch.complex64: "C64",
    torch.float32: "F32",
    torch.int32: "I32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
}
for _name, _code in (("uint16", "U16"), ("uint32", "U32"), ("uint64", "U64")):
    if isinstance(getattr(torch, _name, None), torch.dtype):
        TORCH_DTYPES[getattr(torch, _name)] = _code
FROM_CODE = {code: dtype for dtype, code in TORCH_DTYPES.items()}

_ZIP = b"PK\x03\x04"
_PICKLE = b"\x80"
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # how torch's weights-only unpickler names what it refused


def dtype_code(tensor: torch.Tensor, path: str) -> str:
    """The safetensors dtype of ``tensor``; ValueError naming ``path`` for one the format lacks."""
    code = TORCH_DTYPES.get(tensor.dtype)
    if code is None:
        raise ValueError(f"{path}: dtype {tensor.dtype} has no safetensors type")
    return code


def write_tensors(sink: FileSink, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Write ``tensors`` (CPU, contiguous; by name) as a safetensors file to ``sink`` (``write(buffer)``)."""
    entries = tensorfile.layout((name, dtype_code(t, name), tuple(t.shape)) for name, t in tensors.items())
    sink.write(tensorfile.encode_header(entries, metadata))
    for entry in entries:
        if entry.nbytes:
            sink.write(tensors[entry.name].reshape(-1).view(torch.uint8).numpy().data)


def _read_exactly(f: io.BufferedReader, view: memoryview, where: str) -> None:
    while view:
        n = f.readinto(view)
        if not n:
            raise CorruptCheckpointError(where, None, "ends before its last tensor")
        view = view[n:]


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the safetensors file ``path``, each in a fresh CPU tensor of its own."""
    where = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            n = tensorfile.header_length(f.read(tensorfile.PREFIX_SIZE), size, where)
            header = tensorfile.decode_header(f.read(n), size, where)
            out: dict[str, torch.Tensor] = {}
            for entry in header.tensors.values():
                tensor = torch.empty(entry.shape, dtype=FROM_CODE[entry.dtype])
                if entry.nbytes:
                    _read_exactly(f, tensor.reshape(-1).view(torch.uint8).numpy().data, where)
                out[entry.name] = tensor
            return out
    except OSError as exc:
        if is_transient(exc):
            raise CheckpointIOError(where, None, f"cannot be read: {exc.strerror or exc}") from exc
        raise CorruptCheckpointError(where, None, f"cannot be read: {exc!r}") from exc


def file_kind(path: Path) -> str:
    """``safetensors``, ``pickle`` (``torch.save``'s zip or a bare pickle: CANDLE's) or ``unknown``."""
    try:
        with open(path, "rb") as f:
            head = f.read(tensorfile.PREFIX_SIZE + 1)
    except OSError as exc:
        if is_transient(exc):
            raise CheckpointIOError(str(path), None, f"cannot be read: {exc.strerror or exc}") from exc
        raise CorruptCheckpointError(str(path), None, f"cannot be read: {exc!r}") from exc
    if head[tensorfile.PREFIX_SIZE :] == b"{":
        return "safetensors"
    if head.startswith(_ZIP) or head.startswith(_PICKLE):
        return "pickle"
    return "unknown"


def load_pickle_safely(path: Path) -> object:
    """``torch.load(weights_only=True)`` of CANDLE's ``model.h5``, on the CPU; a pickle that asks for
    anything but tensors and plain containers is refused with one line (and runs nothing)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError, EOFError) as exc:
        text = str(exc)
        found = _GLOBAL.search(text)
        what = f" (it asks for {found.group(1)})" if found else ""
        first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
        if isinstance(exc, pickle.UnpicklingError) or found:
            raise CorruptCheckpointError(
                str(path), None, f"refused: a pickle that would run code when loaded{what}"
            ) from None
        raise CorruptCheckpointError(
            str(path), None, f"cannot be read as a torch.save file: {first}"
        ) from None
