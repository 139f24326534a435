"""``candle-restart status --hosts RUN_ROOT`` and ``candle-restart hosts RUN_ROOT [--clear [HOST ...]]``.

The bad-host table (`candle_restart.coordinator.hostfacts.host_table`) under the run root's
restart policy (its sweep's ``restart:`` block, else the defaults): one row per host with its
attempts, bad ends by cause, whether the next Slurm submissions exclude it, and why. The nodes
a submission may land on come from ``sinfo`` when the run root's sweep recorded Slurm options;
otherwise none are known and nothing is excluded (a local or Parsl run root: the table still
says which hosts would be). ``--clear`` records a clear in ``RUN_ROOT/.hosts.jsonl`` (all hosts,
or those named): their earlier ends no longer count.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

from candle_restart.coordinator.hostfacts import clear_hosts, host_table
from candle_restart.coordinator.hosts import BAD_CAUSES, HostRow
from candle_restart.coordinator.resume import task_dirs
from candle_restart.records.jsontypes import JsonObject, JsonValue
from candle_restart.views.output import print_json
from candle_restart.views.where import check_run_root


def _nodes(root: Path) -> tuple[list[str] | None, str]:
    """The nodes submissions may land on, and a note on where they came from."""
    from candle_restart.records.manifest import ManifestError
    from candle_restart.slurm import SlurmBackend, read_options

    try:
        options = read_options(root)
    except ManifestError as exc:
        return None, f"the sweep's Slurm options cannot be read ({exc}): nothing is excluded"
    if not options:
        return (
            None,
            "no Slurm options recorded for this run root: nothing is excluded (only Slurm submissions take --exclude)",
        )
    if shutil.which("sinfo") is None:
        return None, "sinfo is not on PATH: the partition's nodes are unknown, nothing is excluded"
    nodes = SlurmBackend(options).nodes()
    if nodes is None:
        return None, "sinfo did not answer: the partition's nodes are unknown, nothing is excluded"
    return nodes, f"partition {options.get('partition', '(default)')}: {len(nodes)} node(s)"


@dataclass(frozen=True)
class HostsDoc:
    """``status --hosts --json``: ``hosts`` (one object per row, worst first) and a ``note`` on the nodes."""

    rows: list[HostRow]
    note: str

    def to_json(self) -> JsonObject:
        hosts: list[JsonValue] = [
            {
                "host": r.host,
                "attempts": r.attempts,
                "bad": {c: r.bad.get(c, 0) for c in BAD_CAUSES},
                "excluded": r.excluded,
                "why": r.why,
            }
            for r in self.rows
        ]
        return {"hosts": hosts, "note": self.note}


def rows_text(rows: list[HostRow], note: str) -> str:
    if not rows:
        return f"no attempt has recorded its host yet\n{note}"
    head = ["host", "attempts", *BAD_CAUSES, "excluded", "why"]
    body = [
        [
            r.host,
            str(r.attempts),
            *(str(r.bad.get(c, 0)) for c in BAD_CAUSES),
            "yes" if r.excluded else "no",
            r.why,
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]]).rstrip()
        for line in [head, *body]
    ]
    return "\n".join([*lines, note])


def show_hosts(run_root: str, as_json: bool) -> int:
    from candle_restart.sweep.run import run_root_policy

    root = Path(check_run_root(run_root))
    policy = run_root_policy(root, log=lambda _m: None)
    nodes, note = _nodes(root)
    rows = host_table(
        root, task_dirs(root), bad_ends=policy.host_bad_ends, share=policy.max_excluded_share, nodes=nodes
    )
    if as_json:
        print_json(HostsDoc(rows, note))
    else:
        print(rows_text(rows, note))
    return 0


def cmd_hosts(args: argparse.Namespace) -> int:
    """``hosts RUN_ROOT``: the table; ``--clear [HOST ...]``: record a clear first, then show it."""
    if args.clear is not None:
        root = check_run_root(args.run_root)
        record = clear_hosts(root, args.clear or None)
        which = ", ".join(record.hosts) if record.hosts else "every host"
        print(f"cleared {which} at {record.time}: earlier ends no longer count (recorded in .hosts.jsonl)")
    return show_hosts(args.run_root, args.json)


__all__ = ["HostsDoc", "cmd_hosts", "rows_text", "show_hosts"]
