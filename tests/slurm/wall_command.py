"""The toy trainer (tests/coordinator/toy.py) as a ``command`` task: ``--key=value`` arguments in,
exit 75 from `Preempted` when the core halts it before the walltime (its heartbeat file says why)."""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.coordinator.toy import run


def _value(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    try:
        return json.loads(text)
    except ValueError:
        return text


if __name__ == "__main__":
    params = {}
    for item in sys.argv[1:]:
        key, _, text = item.removeprefix("--").partition("=")
        params[key] = _value(text)
    run(params)
