"""Fault-injection sizes and counts: each test reports its counts, ``make torture`` collects them into a table."""

from __future__ import annotations

import json
import os
from typing import Any


def report(test: str, **counts: Any) -> None:
    """Print the counts and, under ``make torture``, append them to its report file."""
    line = {"test": test, **counts}
    print(json.dumps(line))
    path = os.environ.get("CANDLE_RESTART_TORTURE_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")


def trials(default: int) -> int:
    """The CI-sized count, or the full one under ``make torture`` (CANDLE_RESTART_TORTURE=1)."""
    return int(os.environ.get("CANDLE_RESTART_TORTURE_SCALE", "1")) * default
