"""File checksums: CRC-32 (zlib), the algorithm CANDLE's ``checksum`` key has always used.

CRC-32 keeps CANDLE's ``checksum`` value comparable across tools and runs at
about memory speed; the per-file table in ``ckpt-info.json`` records it with
the file size so truncation is caught even when checksums are off.
"""

from __future__ import annotations

import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from candle_restart.records.ckptinfo import ALGORITHM, DISABLED

__all__ = ["ALGORITHM", "DISABLED", "ChecksumStats", "checksum_file", "list_files"]
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
