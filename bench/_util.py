"""Helpers shared by the bench scripts (not a bench itself: ``run_all`` skips ``_*.py``)."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def dense_model(params: int) -> keras.Model:
    """Two square Dense layers of about ``params`` parameters, compiled with Adam, optimizer built."""
    import keras

    width = int((params / 2) ** 0.5)
    model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(width), keras.layers.Dense(width)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def drop_cache(paths: Iterable[Path]) -> None:
    """Flush and evict these files from the page cache, so the next read comes from the disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


CHUNK = 8 * 1024 * 1024  # dd's block size


def dd(path: Path, nbytes: int) -> float:
    """Seconds ``dd conv=fsync`` takes to write ``nbytes`` (rounded up to blocks) to ``path``, then removed."""
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={path}", f"bs={CHUNK}", f"count={-(-nbytes // CHUNK)}", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds
