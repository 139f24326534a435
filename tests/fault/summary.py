"""Print the ``make torture`` summary table from the JSON lines the fault tests reported."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

LOSS_KEYS = ("partial_loads", "lost_commits", "partial_or_lost", "lost", "deleted_outside")


def main(path: str) -> int:
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {"runs": 0, "trials": 0, "detected": 0, "data_lost": 0})
    for line in Path(path).read_text().splitlines():
        entry = json.loads(line)
        row = rows[entry["test"]]
        row["runs"] += 1
        row["trials"] += int(entry.get("trials", 1))
        row["detected"] += int(entry.get("detected", 0))
        row["data_lost"] += sum(int(entry.get(k, 0)) for k in LOSS_KEYS)
    print(f"{'fault':<48} {'trials':>8} {'detected':>9} {'data lost':>10}")
    for test, row in sorted(rows.items()):
        print(f"{test:<48} {row['trials']:>8} {row['detected']:>9} {row['data_lost']:>10}")
    lost = sum(row["data_lost"] for row in rows.values())
    print(f"total: {sum(r['trials'] for r in rows.values())} trials, data lost = {lost}")
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
