"""Durable file-system primitives: fsync, atomic file writes and atomic symlink swaps.

A rename or a new directory entry is durable only once its parent directory
is fsynced; these helpers do that so callers cannot forget.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (deepest first), then ``root``."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            fsync_path(Path(dirpath) / name)
        for name in dirnames:
            fsync_path(Path(dirpath) / name)
    fsync_path(root)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a reader sees the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)


def write_new_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it (no rename: the caller's directory is private)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def swap_symlink(target: str, link: Path, before_rename: Callable[[], None] | None = None) -> None:
    """Point ``link`` at ``target`` atomically: create a temporary link, rename it over ``link``.

    At every instant ``link`` names either its old target or the new one.
    ``before_rename`` (a lease check) runs right before the rename; if it
    raises, ``link`` is unchanged.
    """
    if link.exists() and not link.is_symlink():
        # A copy made without preserving links left a real file or directory
        # here: keep it (it may be someone's data) under another name.
        os.rename(link, link.with_name(f"{link.name}.not-a-link-{time.strftime('%Y%m%d-%H%M%S')}"))
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        if before_rename is not None:
            before_rename()
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_path(link.parent)
