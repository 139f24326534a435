"""Writing the commands' output: JSON through one typed helper, and quiet ends on closed pipes.

Contract: `print_json` writes strict JSON (every non-finite float is null, see
`candle_restart.records.jsonio.finite`) of a `JsonDoc`: any object with ``to_json()``.
`quiet_broken_pipe` turns the ``BrokenPipeError`` of ``status --json | head -1`` into exit
141 (128 + SIGPIPE, what a shell shows for a command ended by the pipe), with no traceback.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Protocol

from candle_restart.records.jsonio import finite
from candle_restart.records.jsontypes import JsonObject

EXIT_PIPE = 141


class JsonDoc(Protocol):
    """A document of a command's ``--json`` (or ``--format json``) output."""

    def to_json(self) -> JsonObject: ...


def print_json(doc: JsonDoc) -> None:
    """Print ``doc`` as indented strict JSON."""
    print(json.dumps(finite(doc.to_json()), indent=1, allow_nan=False, default=str))


def quiet_broken_pipe() -> int:
    """After a ``BrokenPipeError`` on stdout: point stdout at /dev/null (so the interpreter's
    final flush cannot raise again) and return `EXIT_PIPE`."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (an embedding): nothing to quiet
        pass
    return EXIT_PIPE
