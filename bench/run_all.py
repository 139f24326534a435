"""Run every bench script, collect their JSON lines into bench/results.json (with versions).

``summary`` in the result lists every figure that has a goal, as
``{"where": ..., "value": ..., "goal": ..., "met": ...}``, so the goals can be
read at a glance; the full objects follow under ``benches``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("candle-restart", "keras", "tensorflow-cpu", "tensorflow", "numpy", "filelock", "parsl"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


def goals(node: object, where: str = "") -> list[dict[str, object]]:
    """Every object with a ``goal`` and a ``met`` below ``node``, with its path and its key figure."""
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        if "goal" in node and "met" in node:
            keys = ("ratio", "overhead", "seconds", "lost_batches")
            value = next((node[k] for k in keys if k in node), None)
            found.append({"where": where, "value": value, "goal": node["goal"], "met": node["met"]})
        for key, child in node.items():
            found += goals(child, f"{where}.{key}" if where else str(key))
    return found


def main() -> int:
    benches: list[dict[str, object]] = []  # each bench's JSON line
    results: dict[str, object] = {"cores": os.cpu_count(), "versions": versions(), "benches": benches}
    for script in sorted(HERE.glob("*.py")):
        if script.name == "run_all.py" or script.name.startswith("_"):
            continue
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{script.name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        line = proc.stdout.strip().splitlines()[-1]
        print(line)
        benches.append(json.loads(line))
    summary = [g for bench in benches for g in goals(bench, str(bench.get("bench", "?")))]
    results = {"summary": summary, **results}
    (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for goal in summary:
        print(
            f"{goal['where']}: {goal['value']} (goal {goal['goal']}): {'met' if goal['met'] else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
