"""``.npz`` files (NumPy's zip of ``.npy`` members) written and read with one copy of the data.

`write_npz` streams each array from its own buffer into a binary stream;
`read_npz` reads each stored member straight into a new array (``np.load``
reads a member into bytes and copies them again), 64-byte aligned so a
backend may adopt the buffer, and checks the CRC-32 the zip records for it,
as ``zipfile`` would.  Anything `read_npz` does not
expect (a compressed member, an object array) is read by ``np.load``.  Any
malformed input raises `CorruptCheckpointError`; sizes are checked before
memory is allocated for them.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from candle_restart.errors import CheckpointIOError, CorruptCheckpointError, is_transient

ALIGNMENT = 64  # TensorFlow aborts on a CPU tensor whose buffer is not 64-byte aligned
_LOCAL_HEADER = 30  # fixed part of a zip local file header; name and extra field follow


def write_npz(sink: Any, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` (what ``np.load`` reads) to a binary stream."""
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                if array.dtype.hasobject or array.dtype.kind == "U":
                    np.lib.format.write_array(member, array, allow_pickle=False)
                    continue
                np.lib.format.write_array_header_1_0(member, np.lib.format.header_data_from_array_1_0(array))
                member.write(array.reshape(-1).view(np.uint8).data)


def read_npz(path: Path, check_crc: bool = True) -> dict[str, np.ndarray]:
    """Every member of the ``.npz`` at ``path`` by name (without ``.npy``); CorruptCheckpointError if torn.

    ``check_crc=False`` skips the members' CRCs, for a file whose own CRC-32 was just verified.
    """
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb", buffering=0) as f:
            return {
                info.filename.removesuffix(".npy"): _member(archive, info, f, check_crc)
                for info in archive.infolist()
            }
    except MemoryError:
        raise
    except OSError as exc:
        if is_transient(exc):  # EIO, EACCES, ESTALE: says nothing of the file's content
            raise CheckpointIOError(str(path), None, f"cannot be read: {exc.strerror or exc}") from exc
        raise CorruptCheckpointError(str(path), None, f"cannot be read as .npz: {exc!r}") from exc
    except Exception as exc:  # a torn or forged file: any parser error of zipfile, numpy or zlib
        raise CorruptCheckpointError(str(path), None, f"cannot be read as .npz: {exc!r}") from exc


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, f: Any, check_crc: bool) -> np.ndarray:
    if info.compress_type != zipfile.ZIP_STORED:
        return _by_numpy(archive, info)
    start = member_start(f, info)
    f.seek(start)
    prefix = f.read(min(info.file_size, 65536 + 12))  # magic, header length and header of the .npy
    stream = io.BytesIO(prefix)
    version = np.lib.format.read_magic(stream)
    read_header = (
        np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read_header(stream)
    if dtype.hasobject or fortran:
        return _by_numpy(archive, info)
    header_length = stream.tell()
    count = 1
    for n in shape:
        count *= int(n)
    if header_length + count * dtype.itemsize != info.file_size:  # checked before allocating anything
        raise ValueError(
            f"member {info.filename} holds {info.file_size} bytes, its header describes another size"
        )
    array = aligned_empty(shape, dtype)
    data = array.reshape(-1).view(np.uint8).data
    f.seek(start + header_length)
    read_into(f, data, f"member {info.filename}")
    if check_crc and zlib.crc32(data, zlib.crc32(prefix[:header_length])) != info.CRC:
        raise ValueError(f"member {info.filename} fails its CRC-32")
    return array


def member_start(f: Any, info: zipfile.ZipInfo) -> int:
    """The offset in the zip file ``f`` where the stored data of member ``info`` begins."""
    f.seek(info.header_offset)
    fixed = f.read(_LOCAL_HEADER)
    if len(fixed) != _LOCAL_HEADER or fixed[:4] != b"PK\x03\x04":
        raise ValueError(f"member {info.filename} has no local header")
    name_length, extra_length = struct.unpack("<HH", fixed[26:30])
    return int(info.header_offset) + _LOCAL_HEADER + name_length + extra_length


def read_into(f: Any, data: Any, what: str) -> None:
    """Fill the buffer ``data`` from ``f``'s position with large reads; EOFError if ``f`` ends first."""
    view, done = memoryview(data).cast("B"), 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            raise EOFError(f"{what} is cut short")
        done += n


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """An uninitialised C-order array whose data starts on an `ALIGNMENT`-byte boundary."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    offset = -raw.ctypes.data % ALIGNMENT
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def _by_numpy(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)
