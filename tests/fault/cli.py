"""Running ``candle-restart`` as a real process, and fingerprinting a directory tree."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.task.conftest import ROOT, runner_env

HANG = 300  # seconds: only a hung command gets near this; it ends the test instead of CI


def cli(*args: object, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m candle_restart.cli ARGS`` with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", *map(str, args)],
        cwd=cwd,
        env=runner_env(),
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=HANG,
    )


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
