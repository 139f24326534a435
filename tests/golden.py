"""Golden files: text a test produces, compared byte for byte with a file kept beside the test.

After an intended change, regenerate with ``CANDLE_RESTART_UPDATE_GOLDEN=1`` and commit the
new files with the change (the diff is what a reviewer reads).
"""

from __future__ import annotations

import os
from pathlib import Path


def check_golden(folder: Path, name: str, text: str) -> None:
    """Assert ``text`` equals ``folder/name`` (or write it there under CANDLE_RESTART_UPDATE_GOLDEN=1)."""
    golden = folder / name
    if os.environ.get("CANDLE_RESTART_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.is_file(), f"no golden file {golden.name}; run with CANDLE_RESTART_UPDATE_GOLDEN=1"
    assert text == golden.read_text()
