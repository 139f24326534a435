"""Print the ``make torture`` summary table from the JSON lines the fault tests reported."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

LOSS_KEYS = (
    "partial_loads",
    "lost_commits",
    "partial_or_lost",
    "lost",
    "deleted_outside",
    "mixed_checkpoints",
    "late_commits",
    "set_aside",
    "destroyed_live_writes",
)
# Two writers, runners or submissions where one was promised.
DOUBLE_KEYS = (
    "double_submissions",
    "overlapping_runners",
    "ran_twice",
    "taken_from_live_holder",
    "taken_before_lease",
)
# A writer that held its lease and failed all the same (another process destroyed its work).
FAILED_KEYS = ("legitimate_writers_failed",)


def main(path: str) -> int:
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"runs": 0, "trials": 0, "detected": 0, "data_lost": 0, "double": 0, "failed": 0}
    )
    for line in Path(path).read_text().splitlines():
        entry = json.loads(line)
        row = rows[entry["test"]]
        row["runs"] += 1
        row["trials"] += int(entry.get("trials", 1))
        row["detected"] += int(entry.get("detected", 0))
        row["data_lost"] += sum(int(entry.get(k, 0)) for k in LOSS_KEYS)
        row["double"] += sum(int(entry.get(k, 0)) for k in DOUBLE_KEYS)
        row["failed"] += sum(int(entry.get(k, 0)) for k in FAILED_KEYS)
    print(
        f"{'fault':<62} {'trials':>7} {'detected':>9} {'data lost':>10} {'double runs':>12}"
        f" {'legit failed':>13}"
    )
    for test, row in sorted(rows.items()):
        print(
            f"{test:<62} {row['trials']:>7} {row['detected']:>9} {row['data_lost']:>10} {row['double']:>12}"
            f" {row['failed']:>13}"
        )
    lost = sum(row["data_lost"] for row in rows.values())
    double = sum(row["double"] for row in rows.values())
    failed = sum(row["failed"] for row in rows.values())
    print(
        f"total: {sum(r['trials'] for r in rows.values())} trials, data lost = {lost}, double runs = {double}, "
        f"legitimate writers failed = {failed}"
    )
    return 1 if lost or double or failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
