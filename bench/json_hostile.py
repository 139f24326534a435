"""What hostile JSON costs: the safe reader on 1 MB texts made to be slow, and ``status`` of a run
root one of whose journals holds a 1 MB hostile line.

Baselines, measured in the same run: ``json.loads`` of a valid 1 MB text of 333,000 small arrays
(the C parser alone on as much structure: the least any reader of it can cost), and ``status`` (the
command, and `scan` in this process) of the same run root without the hostile line.  Goal: a
1 MB hostile journal line adds under 1 s to ``status``, and every hostile text costs a small
multiple of the baseline (before the linear depth check, a run of escaped quotes was quadratic:
32 KB took 5 s, 1 MB would take over an hour).  Usage: ``python bench/json_hostile.py``; prints
one JSON object.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from candle_restart.coordinator import LocalBackend, scan
from candle_restart.records.jsonio import JsonError, loads
from candle_restart.task import create_task

MB = 1_000_000
HOSTILE = {
    "escaped_quotes_never_closed": "[" * 65 + '"\\' * (MB // 2),
    "escaped_quotes_after_bracketed_strings": "[" * 30 + '"[]",' * 40 + '"\\' * (MB // 2),
    "unclosed_quotes": '"' * MB,
    "deep_brackets": "[" * MB,
    "shallow_pairs": "[" + "[]," * (MB // 3) + "[]]",
    "digit_runs_of_100": "[" + ("1" * 100 + ",") * (MB // 101) + "1]",
}
REPEATS = 5
ROOT = Path(__file__).resolve().parent.parent


def best_of(action: object, repeats: int = REPEATS) -> float:
    """The least seconds ``action()`` took over ``repeats`` runs (the noise of a shared machine is extra)."""
    assert callable(action)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def parse(text: str) -> None:
    with contextlib.suppress(JsonError):
        loads(text)


def status_seconds(root: Path) -> tuple[float, float]:
    """Seconds of ``candle-restart status ROOT`` and of `scan` in this process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "candle_restart.cli", "status", str(root)]
    cli = best_of(lambda: subprocess.run(command, env=env, capture_output=True, check=True))
    return cli, best_of(lambda: scan(root, {"local": LocalBackend()}))


def main() -> None:
    baseline_text = HOSTILE["shallow_pairs"]
    baseline = best_of(lambda: json.loads(baseline_text))
    texts = {name: {"seconds": round(best_of(lambda t=text: parse(t)), 4)} for name, text in HOSTILE.items()}
    for entry in texts.values():
        entry["ratio_to_baseline"] = round(entry["seconds"] / baseline, 1)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp) / "run"
        tasks = [create_task(root, {"epochs": 3, "i": i}, command=["true"], sweep="bench") for i in range(20)]
        without, scan_without = status_seconds(root)
        with open(tasks[0].journal_file, "a") as journal:
            journal.write(HOSTILE["escaped_quotes_never_closed"] + "\n")
        with_line, scan_with = status_seconds(root)
    extra = with_line - without
    print(
        json.dumps(
            {
                "bench": "json_hostile",
                "cores": os.cpu_count(),
                "baseline_json_loads_1mb_arrays_s": round(baseline, 4),
                "texts_1mb": texts,
                "status": {
                    "tasks": len(tasks),
                    "without_s": round(without, 3),
                    "with_hostile_line_s": round(with_line, 3),
                    "scan_without_s": round(scan_without, 4),
                    "scan_with_hostile_line_s": round(scan_with, 4),
                    "seconds": round(extra, 3),
                    "goal": "a 1 MB hostile journal line adds < 1 s to status",
                    "met": extra < 1.0,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
