"""File checksums: CRC-32 (zlib), the algorithm CANDLE's ``checksum`` key has always used.

CRC-32 keeps CANDLE's ``checksum`` value comparable across tools and runs at
about memory speed; the per-file table in ``ckpt-info.json`` records it with
the file size so truncation is caught even when checksums are off.
`copy_verified` copies a file and checks the copy against both (the drain's copy
to the shared tier), from the CRC computed while copying where one was recorded.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from candle_restart.errors import CkptError, CorruptCheckpointError
from candle_restart.records.ckptinfo import ALGORITHM, DISABLED, FileEntry

__all__ = ["ALGORITHM", "DISABLED", "ChecksumStats", "checksum_file", "copy_verified", "list_files"]
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ChecksumStats:
    """One checksum pass: the value as CANDLE writes it, bytes read and time taken."""

    value: str
    nbytes: int
    seconds: float

    @property
    def megabytes(self) -> float:
        return self.nbytes / (1024 * 1024)

    def log_line(self) -> str:
        """CANDLE's log line for this pass, verbatim format."""
        rate = self.megabytes / self.seconds if self.seconds > 0 else float("inf")
        return f"checksummed: {self.megabytes:0.3f} MB in {self.seconds:.3f} seconds ({rate:.2f} MB/s)."


def checksum_file(path: Path) -> ChecksumStats:
    """CRC-32 of a file as a decimal string (CANDLE's format), with size and time.

    A helper thread reads the next chunk while this one is checksummed (both
    release the GIL), so a cold file costs about its read time, not read
    time plus CRC time.
    """
    start = time.perf_counter()
    crc = 0
    total = 0
    with open(path, "rb", buffering=0) as f, ThreadPoolExecutor(1, thread_name_prefix="crc-read") as reader:
        buffers = (bytearray(_CHUNK), bytearray(_CHUNK))
        pending = reader.submit(f.readinto, buffers[0])
        turn = 0
        while n := pending.result():
            pending = reader.submit(f.readinto, buffers[1 - turn])
            crc = zlib.crc32(memoryview(buffers[turn])[:n], crc)
            total += n
            turn = 1 - turn
    return ChecksumStats(str(crc), total, time.perf_counter() - start)


def list_files(root: Path) -> list[str]:
    """Relative paths of every regular file under ``root``, sorted, '/'-separated."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return sorted(found)


def copy_verified(
    source: Path, target: Path, entry: FileEntry | None, between: Callable[[], None] | None = None
) -> int:
    """Copy ``source`` to the new file ``target``, fsync it, and check the copy's size and CRC-32.

    The CRC-32 is computed while copying, on the very buffers handed to the target's
    ``write`` calls.  Where ``entry`` (``ckpt-info.json``'s) records a CRC, that value must
    match it and the copy's size (``fstat`` after the fsync) must match the recorded size:
    nothing is read back (why that is safe, and what it does not catch: docs/structure.md,
    "Drain verification").  Without a recorded CRC (checksums off, a CANDLE-written file),
    the copy is read back and compared with the CRC of the source's bytes.
    ``between``, when given, runs before each chunk (and once before the fsync); it may
    raise to abandon the copy (the caller removes ``target``).  Returns the bytes copied.
    """
    size = None if entry is None else entry.size
    recorded = None if entry is None or entry.crc32 in (None, DISABLED) else entry.crc32
    value, total = 0, 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb", buffering=0) as src, open(target, "xb", buffering=0) as dst:
        buffer = bytearray(_CHUNK)
        while True:
            if between is not None:
                between()
            n = src.readinto(buffer)
            if not n:
                break
            view = memoryview(buffer)[:n]
            value = zlib.crc32(view, value)
            total += n
            while view:  # an unbuffered write may be short
                view = view[dst.write(view) or 0 :]
        os.fsync(dst.fileno())
        copied = os.fstat(dst.fileno()).st_size
    if recorded is not None and str(value) != recorded:
        raise CorruptCheckpointError(
            str(source), None, f"checksum mismatch: ckpt-info.json recorded {recorded}"
        )
    if size is not None and total != size:
        raise CorruptCheckpointError(str(source), None, f"has {total} bytes, ckpt-info.json recorded {size}")
    if copied != total:
        raise CkptError(str(target), None, f"copy has {copied} bytes, the source {total}")
    if recorded is None:  # nothing independent to compare with: read the copy back
        read_back = checksum_file(target).value
        if read_back != str(value):
            raise CkptError(str(target), None, f"copy reads back CRC-32 {read_back}, the source had {value}")
    return total
