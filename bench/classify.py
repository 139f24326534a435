"""Classification time of ``scan`` for 1,000, 10,000 and 100,000 synthetic task directories.

Each synthetic task looks like a preempted one: task.json, state.json, the
coordinator's two journal events (``journal.jsonl``) and the runner's two
(``runs.jsonl``), one committed checkpoint (ckpt-info.json + a small model file)
and the ``last`` link.  Baseline, measured in the same run: a plain loop that
reads and parses the same files the scan reads (task.json, both journal files
line by line, state.json, ckpt-info.json through ``last``); goal: the scan within
2 times it at every size (``ratio_to_baseline``).  ``ratio_to_two_files`` keeps the
older baseline (state.json and ckpt-info.json only) for comparison with earlier
figures.  Usage: ``python bench/classify.py [N ...]`` (default 1,000 and 10,000;
``BENCH_CLASSIFY_LARGE=1`` adds 100,000); prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from candle_restart.coordinator import LocalBackend, scan

GOAL = 2.0

INFO = {
    "epoch": 3,
    "save_best_metric": "val_loss",
    "best_metric_last": 0.5,
    "model_file": "model.bin",
    "checksum": "__DISABLED__",
    "timestamp": "2026-01-01 00:00:00",
    "time_elapsed": 1.0,
    "metadata": None,
    "schema_version": 1,
    "epochs": 10,
    "complete": False,
    "files": {"model.bin": {"size": 16, "crc32": None}},
}


def make_tasks(root: Path, n: int) -> None:
    for i in range(n):
        task = root / f"bench-{i:06d}"
        epoch = task / "ckpts" / "epochs" / "003"
        epoch.mkdir(parents=True)
        (epoch / "model.bin").write_bytes(b"x" * 16)
        (epoch / "ckpt-info.json").write_text(json.dumps(INFO))
        os.symlink("epochs/003", task / "ckpts" / "last")
        (task / "task.json").write_text(
            json.dumps(
                {"task_id": task.name, "params": {"epochs": 10, "lr": i}, "entry": "m:run", "sweep": "bench"}
            )
        )
        (task / "state.json").write_text(
            json.dumps({"status": "preempted", "exit_code": 75, "reason": "USR1"})
        )
        coordinator = [
            {"event": "submit_intent", "generation": 1},
            {"event": "submitted", "generation": 1},
        ]
        runner = [
            {"event": "start", "attempt": 1, "generation": 1},
            {"event": "exit", "exit_code": 75, "status": "preempted"},
        ]
        (task / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in coordinator))
        (task / "runs.jsonl").write_text("".join(json.dumps(e) + "\n" for e in runner))


def baseline(root: Path) -> float:
    """Read and parse every file the scan reads, in a plain loop."""
    start = time.perf_counter()
    for entry in sorted(os.listdir(root)):
        task = root / entry
        json.loads((task / "task.json").read_text())
        for name in ("journal.jsonl", "runs.jsonl"):
            for line in (task / name).read_text().splitlines():
                json.loads(line)
        json.loads((task / "state.json").read_text())
        json.loads((task / "ckpts" / "last" / "ckpt-info.json").read_text())
    return time.perf_counter() - start


def two_files(root: Path) -> float:
    """The older baseline: state.json and ckpt-info.json only."""
    start = time.perf_counter()
    for entry in sorted(os.listdir(root)):
        json.loads((root / entry / "state.json").read_text())
        json.loads((root / entry / "ckpts" / "last" / "ckpt-info.json").read_text())
    return time.perf_counter() - start


def measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        make_tasks(root, n)
        baseline(root)  # warm the page cache: every measurement below reads from memory
        # The best of three of each, interleaved: the machine may be shared, and the least
        # disturbed run is the one that measures the code.
        base, old, took = float("inf"), float("inf"), float("inf")
        for _ in range(3):
            base, old = min(base, baseline(root)), min(old, two_files(root))
            start = time.perf_counter()
            statuses = scan(root, {"local": LocalBackend()})
            took = min(took, time.perf_counter() - start)
            assert len(statuses) == n and all(s.state == "preempted" for s in statuses)
    return {
        "tasks": n,
        "scan_s": round(took, 4),
        "baseline_read_s": round(base, 4),
        "ratio_to_baseline": round(took / base, 3),
        "ratio_to_two_files": round(took / old, 3),
        "per_task_ms": round(1000 * took / n, 4),
    }


def main() -> None:
    large = [100_000] if os.environ.get("BENCH_CLASSIFY_LARGE") else []
    sizes = [int(x) for x in sys.argv[1:]] or [1_000, 10_000, *large]
    results = [measure(n) for n in sizes]
    first = results[0]
    for r in results:
        r["growth_vs_first_per_task"] = r["per_task_ms"] / first["per_task_ms"]
    ten_k = next((r["scan_s"] for r in results if r["tasks"] == 10_000), None)
    print(
        json.dumps(
            {
                "bench": "classify",
                "cores": os.cpu_count(),
                "results": results,
                "ten_thousand": {
                    "seconds": ten_k,
                    "goal": "<= 2 s for 10,000 tasks",
                    "met": ten_k is not None and ten_k <= 2.0,
                },
                "against_a_plain_read": {
                    "ratio": max(r["ratio_to_baseline"] for r in results),
                    "goal": f"<= {GOAL} x a plain read of the same files, at each of {sizes}",
                    "met": all(r["ratio_to_baseline"] <= GOAL for r in results),
                },
                "note": "per-task time should stay flat as N grows (growth_vs_first_per_task)",
            }
        )
    )


if __name__ == "__main__":
    main()
