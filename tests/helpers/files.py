"""Files the tests compare: directory fingerprints and golden files.

Golden files: text a test produces, compared byte for byte with a file kept beside the test.
After an intended change, regenerate with ``CANDLE_RESTART_UPDATE_GOLDEN=1`` and commit the
new files with the change (the diff is what a reviewer reads).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree(root: Path, skip: tuple[str, ...] = (".report",)) -> dict[str, str]:
    """Every entry under ``root`` (but ``skip``): a file's SHA-256, a link's target, or "dir"."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def snapshot(root: Path, skip: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every file and link under ``root`` (except under ``skip``): kind, mtime, content or target."""
    found: dict[str, tuple[str, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in [*filenames, *dirnames]:
            path = Path(dirpath, name)
            st = path.lstat()
            if path.is_symlink():
                found[str(path)] = ("link", st.st_mtime_ns, os.readlink(path).encode())
            elif path.is_file():
                found[str(path)] = ("file", st.st_mtime_ns, path.read_bytes())
            else:
                found[str(path)] = ("dir", st.st_mtime_ns, b"")
    return found


def check_golden(folder: Path, name: str, text: str) -> None:
    """Assert ``text`` equals ``folder/name`` (or write it there under CANDLE_RESTART_UPDATE_GOLDEN=1)."""
    golden = folder / name
    if os.environ.get("CANDLE_RESTART_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.is_file(), f"no golden file {golden.name}; run with CANDLE_RESTART_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


def split_steps(out: str) -> list[list[str]]:
    """A multi-step driver's stdout split at its ``=== step N ===`` markers: each step's lines."""
    parts: list[list[str]] = []
    for line in out.splitlines():
        if line.startswith("=== step "):
            parts.append([])
        elif parts:
            parts[-1].append(line)
    return parts
