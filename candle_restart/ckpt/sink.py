"""Checkpoint files written in one pass: size and CRC-32 come from the bytes as they go out.

A backend that can capture its state in memory (see `Snapshot`) writes each
file of a checkpoint through a `FileSink`: sequential ``os.write`` calls of
at most 8 MiB straight from the caller's buffers, with the CRC-32 computed
on the same buffers, so nothing is read back to be checksummed.
`CheckpointFiles` fsyncs each file when it is closed, before the next one is
written, and `CheckpointFiles.finish` returns the per-file table for
``ckpt-info.json``.

The slices bound each system call (and the time a signal waits for it);
the fsync at close is what the commit protocol needs before the rename, and
nothing more is synced.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from candle_restart.ckpt.checksum import ChecksumStats
from candle_restart.records.ckptinfo import FileEntry

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer as Buffer  # any object memoryview accepts (numpy arrays too)

_SLICE = 8 * 1024 * 1024
_KICK = 4 * 1024 * 1024


class FileSink:
    """A new file written front to back; ``tell`` is the bytes written so far.

    It has no ``seek``: ``zipfile`` then streams members with data
    descriptors instead of seeking back, so every byte is written (and
    checksummed) exactly once.
    """

    def __init__(self, path: Path, checksum: bool) -> None:
        self.path = path
        self.size = 0
        self.crc_seconds = 0.0
        self._crc: int | None = 0 if checksum else None
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)

    def write(self, data: Buffer) -> int:
        """Write all of ``data`` (any C-contiguous buffer); return its length in bytes."""
        if self._fd is None:
            raise ValueError(f"{self.path}: write to a closed checkpoint file")
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            written = os.write(self._fd, view[:_SLICE])
            if self._crc is not None:
                start = time.perf_counter()
                self._crc = zlib.crc32(view[:written], self._crc)
                self.crc_seconds += time.perf_counter() - start
            view = view[written:]
            self.size += written
            self._wrote()
        return total

    def _wrote(self) -> None:
        """Called after each slice is written (`size` counts it)."""

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        """Nothing is buffered here; durability comes from `CheckpointFiles`' fsync."""

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> ChecksumStats | None:
        """The checksum pass (value, bytes, seconds spent in CRC), or None when checksums are off."""
        if self._crc is None:
            return None
        return ChecksumStats(str(self._crc), self.size, self.crc_seconds)

    def record(self) -> FileEntry:
        """This file's entry in ``ckpt-info.json``'s ``files`` table."""
        return FileEntry(self.size, None if self._crc is None else str(self._crc))


class CheckpointFiles:
    """The files of one checkpoint being written into a private directory (``work/``)."""

    def __init__(self, directory: Path, checksum: bool) -> None:
        self.directory = directory
        self.checksum = checksum
        self.sinks: dict[str, FileSink] = {}

    def create(self, name: str) -> FileSink:
        """Open a new file ``name`` (a relative path without ``..``); closing it fsyncs it."""
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts or name in self.sinks:
            raise ValueError(f"{self.directory}: bad or repeated checkpoint file name {name!r}")
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = _SyncedSink(path, self.checksum)
        self.sinks[name] = sink
        return sink

    @property
    def nbytes(self) -> int:
        return sum(s.size for s in self.sinks.values())

    def abort(self) -> None:
        """Close every file without syncing it (the write failed; ``work/`` is discarded), so no
        descriptor keeps a deleted work file's space: a full disk is freed by the next `begin`."""
        for sink in self.sinks.values():
            FileSink.close(sink)

    def finish(self) -> dict[str, FileEntry]:
        """Close (and so fsync) every file; the ``files`` table, by name."""
        for sink in self.sinks.values():
            sink.close()
        return {name: self.sinks[name].record() for name in sorted(self.sinks)}


class _SyncedSink(FileSink):
    """A `FileSink` whose `close` makes the file durable first.

    Every `_KICK` bytes (4 MiB) it asks the kernel to start writing back what it has
    (``posix_fadvise(DONTNEED)`` starts writeback without waiting for it, and
    lets the written pages go), so the device writes while the next bytes
    are produced and checksummed, and the fsync at close finds little left.
    """

    _kicked = 0

    def _wrote(self) -> None:
        if self.size - self._kicked >= _KICK and self._fd is not None and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd, self._kicked, self.size - self._kicked, os.POSIX_FADV_DONTNEED)
            self._kicked = self.size

    def close(self) -> None:
        try:
            if self._fd is not None:
                os.fsync(self._fd)
        finally:
            super().close()


class Snapshot(Protocol):
    """A checkpoint's content captured in host memory at one instant of training.

    `write` may run in another thread while training goes on, so it must not
    touch the live model: only what was captured.  ``discard`` is called once
    the snapshot is no longer needed (after ``write``, or when the commit
    failed before it).  It writes every file of
    the checkpoint through ``files.create`` and names the model file in
    ``model_file``.
    """

    model_file: str

    def write(self, files: CheckpointFiles) -> None: ...

    def discard(self) -> None:
        """Release what the snapshot holds outside memory (temporary files); called after `write`
        or instead of it, possibly more than once."""
