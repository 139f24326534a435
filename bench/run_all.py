"""Run every bench script, collect their JSON lines into bench/results.json (with versions)."""

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


def main() -> int:
    results = {"cores": os.cpu_count(), "versions": versions(), "benches": []}
    for script in sorted(HERE.glob("*.py")):
        if script.name == "run_all.py" or script.name.startswith("_"):
            continue
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{script.name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        line = proc.stdout.strip().splitlines()[-1]
        print(line)
        results["benches"].append(json.loads(line))
    (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
