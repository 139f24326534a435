"""Keras' HDF5 weights file written as a stream, and its datasets read back from one buffer.

`H5Image` lays the file out with h5py against a file object that only
records what HDF5 writes (a few KiB of metadata): each numeric dataset is
created with its space allocated at once and never filled, so HDF5 writes
none of its bytes.  `H5Image.write` then emits the file front to back: each
array's bytes straight from its own buffer at the offset HDF5 gave it, and
between them what HDF5 wrote there (zeros where it wrote nothing).  No intermediate HDF5 file or
in-memory image is made, every byte is written once, and the sink needs no
``seek`` (a zip member can be written this way).  Datasets of at least
`ALIGN_FROM` bytes are aligned to `ALIGNMENT` bytes in the file.

`read_datasets` is the reverse for restart: the whole file (or a stored zip
member) is read into one aligned buffer with large reads, and each wanted
dataset is a view of that buffer at the offset HDF5 records (h5py reads the
rare dataset that is chunked, filtered or of another type).
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from candle_restart.errors import CheckpointIOError, CorruptCheckpointError, LoadChecksumError, is_transient
from candle_restart.keras.npz import ALIGNMENT, aligned_empty, member_start, read_into

# One item Keras' saving walk stores: the group path, its metadata attributes, its values by key.
Entry = tuple[str, "dict[str, Any] | None", "dict[str, Any]"]

_PAGE = 4096
# Objects of at least this many bytes start on an ALIGNMENT boundary (a backend may adopt
# their buffers).  Aligning smaller ones too makes HDF5's allocator quadratic in the count.
ALIGN_FROM = 4096
_NUMERIC = "biufc"


class _Recorder(io.RawIOBase):
    """A seekable file object that keeps what HDF5 writes (its metadata) in 4 KiB pages."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[int, bytearray] = {}
        self.pos = 0
        self.size = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            page, offset = divmod(self.pos + done, _PAGE)
            n = min(_PAGE - offset, len(view) - done)
            target = self.pages.get(page)
            if target is None:
                target = self.pages[page] = bytearray(_PAGE)
            target[offset : offset + n] = view[done : done + n]
            done += n
        self.pos += done
        self.size = max(self.size, self.pos)
        return done

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self.size - self.pos))
        view[:n] = self.range(self.pos, n)
        self.pos += n
        return n

    def range(self, start: int, length: int) -> bytearray:
        """Bytes ``[start, start+length)`` as written (zeros where nothing was)."""
        out = bytearray(length)
        at = start
        while at < start + length:
            page, offset = divmod(at, _PAGE)
            n = min(_PAGE - offset, start + length - at)
            source = self.pages.get(page)
            if source is not None:
                out[at - start : at - start + n] = source[offset : offset + n]
            at += n
        return out

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def truncate(self, size: int | None = None) -> int:
        self.size = self.pos if size is None else size
        return self.size


def _raw(value: Any) -> np.ndarray | None:
    """``value`` as an array whose bytes can be streamed as HDF5 stores them, else None."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in _NUMERIC or value.dtype.byteorder == ">":
        return None
    return value if value.flags.c_contiguous else np.ascontiguousarray(value)


@dataclass
class H5Image:
    """An HDF5 file laid out in memory but for its arrays; `write` emits it once."""

    entries: list[Entry]
    size: int = 0
    _segments: list[tuple[int, memoryview]] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = _Recorder()
        arrays: list[tuple[int, memoryview]] = []
        with h5py.File(recorder, "w", alignment_threshold=ALIGN_FROM, alignment_interval=ALIGNMENT) as f:
            for entry_path, metadata, values in self.entries:
                if not metadata and not values:
                    continue
                group = f.create_group(f"{entry_path}/vars" if entry_path else "vars")
                for name, value in (metadata or {}).items():
                    group.attrs[name] = value
                for key, value in values.items():
                    arrays += _dataset(group, key, value)
        self.size = recorder.size
        arrays.sort(key=lambda s: s[0])
        end = 0  # the bytes between the arrays are HDF5's metadata (or free space: zeros)
        for offset, data in arrays:
            if offset < end or offset + data.nbytes > self.size:
                raise ValueError(f"HDF5 layout: overlapping or outlying dataset at {offset}")
            if offset > end:
                self._segments.append((end, memoryview(recorder.range(end, offset - end))))
            self._segments.append((offset, data))
            end = offset + data.nbytes
        if self.size > end:
            self._segments.append((end, memoryview(recorder.range(end, self.size - end))))

    def write(self, sink: Any) -> None:
        """Write the file's bytes in order to ``sink`` (anything with ``write``)."""
        for _offset, data in self._segments:
            sink.write(data)


def _dataset(group: Any, key: str, value: Any) -> list[tuple[int, memoryview]]:
    """Create dataset ``key`` for ``value``; the (offset, array) to stream, or [] when HDF5 wrote it."""
    array = _raw(value)
    if array is None or "/" in key:  # bfloat16, strings, objects: h5py converts and writes them
        if str(getattr(value, "dtype", "")) == "bfloat16":
            group.create_dataset(key, data=value).attrs["dtype"] = "bfloat16"
        else:
            group[key] = value
        return []
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    dcpl.set_obj_track_times(False)
    space = h5py.h5s.create_simple(array.shape) if array.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
    dataset = h5py.h5d.create(group.id, key.encode(), h5py.h5t.py_create(array.dtype), space, dcpl=dcpl)
    offset = dataset.get_offset()
    dataset.close()
    return [] if offset is None or not array.nbytes else [(offset, array.reshape(-1).view(np.uint8).data)]


class _BufferFile(io.RawIOBase):
    """A read-only file object over a buffer (h5py reads the file's metadata through it)."""

    def __init__(self, buffer: np.ndarray) -> None:
        super().__init__()
        self._view = buffer.reshape(-1).view(np.uint8).data
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        n = max(0, min(len(target), len(self._view) - self.pos))
        target[:n] = self._view[self.pos : self.pos + n]
        self.pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self._view)}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos


def read_datasets(image: np.ndarray, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The datasets ``names`` of the HDF5 file held in ``image`` (a uint8 buffer), by name.

    A contiguous, unfiltered dataset is a view of ``image`` (aligned where the
    writer aligned it); any other is read by h5py.  Raises KeyError for a
    missing name and ValueError for something that is not a dataset.
    """
    found: dict[str, np.ndarray] = {}
    with h5py.File(_BufferFile(image), "r") as f:
        for name in names:
            if name not in f:
                raise KeyError(f"no dataset {name}")
            dataset = f[name]
            if not isinstance(dataset, h5py.Dataset):
                raise ValueError(f"{name} is not a dataset")
            found[name] = _dataset_value(image, dataset)
    return found


def _dataset_value(image: np.ndarray, dataset: Any) -> np.ndarray:
    dtype = dataset.dtype
    offset = dataset.id.get_offset()
    direct = (
        dtype.kind in _NUMERIC
        and dtype.isnative
        and dataset.chunks is None
        and not dataset.attrs.get("dtype")
        and offset is not None
    )
    if direct:
        count = int(np.prod(dataset.shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        if offset + nbytes > image.nbytes:
            raise ValueError(f"{dataset.name} lies past the end of the file")
        return image[offset : offset + nbytes].view(dtype).reshape(dataset.shape)
    value = np.asarray(dataset[()])
    if dataset.attrs.get("dtype") == "bfloat16":
        import ml_dtypes

        value = value.view(ml_dtypes.bfloat16)
    copy = aligned_empty(value.shape, value.dtype)
    copy[...] = value
    return copy


def read_weights(
    path: Path, member: str | None, names: Iterable[str], check_crc: bool = True, file_crc: str | None = None
) -> dict[str, np.ndarray]:
    """The datasets ``names`` of the HDF5 weights at ``path`` (in zip member ``member`` when not None).

    The file (or the stored member) is read once into one aligned buffer;
    with ``check_crc`` a member's CRC-32 recorded by the zip is checked.
    With ``file_crc`` (the whole file's CRC-32 that ``ckpt-info.json`` records, left
    to this read by restart) the whole file is read front to back, the member into
    the buffer, and its CRC-32 compared with ``file_crc`` before anything is parsed:
    `LoadChecksumError` on a mismatch (also when the file cannot be parsed and its CRC
    differs: a corrupt file is told by its checksum first).
    CorruptCheckpointError names the file for anything malformed or missing,
    CheckpointIOError for an I/O error that says nothing of the content.
    """
    try:
        with open(path, "rb", buffering=0) as f:
            image = _read_checked(f, path, member, file_crc) if file_crc else _read_image(f, member, check_crc)
        return read_datasets(image, names)
    except (MemoryError, LoadChecksumError):
        raise
    except OSError as exc:
        if is_transient(exc):
            raise CheckpointIOError(str(path), member, f"cannot be read: {exc.strerror or exc}") from exc
        raise CorruptCheckpointError(str(path), member, f"cannot be read as Keras weights: {exc!r}") from exc
    except Exception as exc:  # a torn or forged file: any parser error of zipfile or h5py
        if file_crc:
            check_whole(path, file_crc)
        raise CorruptCheckpointError(str(path), member, f"cannot be read as Keras weights: {exc!r}") from exc


def _mismatch(path: Path, recorded: str, found: int) -> LoadChecksumError:
    return LoadChecksumError(
        str(path), None, f"checksum mismatch: ckpt-info.json recorded {recorded}, file has {found}"
    )


def check_whole(path: Path, recorded: str) -> None:
    """`LoadChecksumError` if the file's CRC-32 is not ``recorded`` (a separate read: error paths only)."""
    found = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_TAIL_CHUNK):
            found = zlib.crc32(chunk, found)
    if str(found) != recorded:
        raise _mismatch(path, recorded, found)


_TAIL_CHUNK = 4 * 1024 * 1024
_PIPE_CHUNK = 16 * 1024 * 1024


def _read_crc(f: Any, image: np.ndarray, crc: int, what: str) -> int:
    """Fill ``image`` from ``f``'s position, returning the CRC-32 continued from ``crc`` over it: a
    helper thread checksums each chunk while the next is read (both release the GIL)."""
    view, done = image.data.cast("B"), 0
    with ThreadPoolExecutor(1, thread_name_prefix="crc-load") as pool:
        pending: Future[int] | None = None
        while done < len(view):
            n = f.readinto(view[done : done + _PIPE_CHUNK])
            if not n:
                raise EOFError(f"{what} is cut short")
            previous = crc if pending is None else pending.result()
            pending = pool.submit(zlib.crc32, view[done : done + n], previous)
            done += n
        return crc if pending is None else pending.result()


def _read_checked(f: Any, path: Path, member: str | None, recorded: str) -> np.ndarray:
    """The stored member ``member`` (None: the whole file) read into an aligned buffer, with the
    whole file's CRC-32 computed on the way (every byte read once, in order) and checked."""
    if member is None:
        image = _read_image(f, None, False)
        if str(zlib.crc32(image.data)) != recorded:
            raise _mismatch(path, recorded, zlib.crc32(image.data))
        return image
    with zipfile.ZipFile(f) as archive:
        info = archive.getinfo(member)
        start = member_start(f, info) if info.compress_type == zipfile.ZIP_STORED else None
    if start is None:  # not written by us or by Keras: checked apart, then read as zipfile reads it
        check_whole(path, recorded)
        return _read_image(f, member, True)
    f.seek(0)
    head = bytearray(start)
    read_into(f, head, "the file")
    image = aligned_empty((info.file_size,), np.dtype(np.uint8))
    crc = _read_crc(f, image, zlib.crc32(head), f"member {member}")
    while chunk := f.read(_TAIL_CHUNK):
        crc = zlib.crc32(chunk, crc)
    if str(crc) != recorded:
        raise _mismatch(path, recorded, crc)
    return image


def _read_image(f: Any, member: str | None, check_crc: bool) -> np.ndarray:
    if member is None:
        image = aligned_empty((os.fstat(f.fileno()).st_size,), np.dtype(np.uint8))
        read_into(f, image, "the file")
        return image
    with zipfile.ZipFile(f) as archive:
        info = archive.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:  # not written by us or by Keras: let zipfile inflate it
            data = archive.read(info)
            image = aligned_empty((len(data),), np.dtype(np.uint8))
            image[:] = np.frombuffer(data, np.uint8)
            return image
        image = aligned_empty((info.file_size,), np.dtype(np.uint8))
        f.seek(member_start(f, info))
        read_into(f, image, f"member {member}")
    if check_crc and zlib.crc32(image.data) != info.CRC:
        raise ValueError(f"member {member} fails its CRC-32")
    return image
