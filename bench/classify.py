"""Classification time of ``scan`` for 1,000, 10,000 and 100,000 synthetic task directories.

Each synthetic task looks like a preempted one: task.json, state.json, a
four-event journal, one committed checkpoint (ckpt-info.json + a small model
file) and the ``last`` link.  Baseline, measured in the same run: reading
every task's ``state.json`` and ``ckpt-info.json`` in a plain loop (the least
I/O any classifier must do).  Goal: 10,000 tasks in at most 2 s, growing
linearly.  Usage: ``python bench/classify.py [N ...]``; prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from candle_restart.coordinator import LocalBackend, scan

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
        events = [
            {"event": "submit_intent", "generation": 1},
            {"event": "submitted", "generation": 1},
            {"event": "start", "attempt": 1},
            {"event": "exit", "exit_code": 75, "status": "preempted"},
        ]
        (task / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def baseline(root: Path) -> float:
    start = time.perf_counter()
    for entry in sorted(os.listdir(root)):
        json.loads((root / entry / "state.json").read_text())
        json.loads((root / entry / "ckpts" / "last" / "ckpt-info.json").read_text())
    return time.perf_counter() - start


def measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        make_tasks(root, n)
        base = baseline(root)
        start = time.perf_counter()
        statuses = scan(root, {"local": LocalBackend()})
        took = time.perf_counter() - start
        assert len(statuses) == n and all(s.state == "preempted" for s in statuses)
    return {
        "tasks": n,
        "scan_s": took,
        "baseline_read_s": base,
        "ratio_to_baseline": took / base,
        "per_task_ms": 1000 * took / n,
    }


def main() -> None:
    sizes = [int(x) for x in sys.argv[1:]] or [1_000, 10_000, 100_000]
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
                "note": "per-task time should stay flat as N grows (growth_vs_first_per_task)",
            }
        )
    )


if __name__ == "__main__":
    main()
