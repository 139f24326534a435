"""The bad-host record of a run root, derived from what its tasks' journals already hold.

Nothing new is written per attempt: each task's ``runs.jsonl`` ``start`` says where an attempt ran
(``node``, Slurm's name for it, else ``host``), its ``exit`` how it ended (``cause``, ``reason``,
``epoch_seconds``), and the journal's ``runner_lost`` the end of an attempt whose runner died. The
only file of its own is the run root's ``.hosts.jsonl`` of clears (`candle_restart.records.hostlog`),
written by `clear_hosts` (``candle-restart hosts --clear``), durable and never rewritten.

`host_table` reads it all and asks the pure `candle_restart.coordinator.hosts.host_rows`; reading is
one pass over each task's two journal files (the coordinator reads them anyway), and only for a
backend that can exclude hosts (`candle_restart.coordinator.backend.AvoidHosts`) or ``status --hosts``.
A task that cannot be read adds no ends; nothing here raises for a record.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from candle_restart.coordinator.backend import AvoidHosts
from candle_restart.coordinator.hosts import AttemptEnd, Clear, HostRow, excluded_hosts, host_rows
from candle_restart.coordinator.policy import Policy
from candle_restart.records.hostlog import HostsCleared, append_clear, read_clears
from candle_restart.records.journal import EXIT, RUNNER_LOST, START
from candle_restart.records.taskspec import now_iso
from candle_restart.task.attemptfacts import iso_seconds
from candle_restart.task.taskdir import TaskDir


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def sweep_of(task_id: str) -> str:
    """The sweep a task belongs to: its id less the ``-<hash>`` tail (``<sweep>-<12 hex>``)."""
    name, _, tail = task_id.rpartition("-")
    return name if name and len(tail) == 12 else task_id


def attempt_ends(task: TaskDir) -> list[AttemptEnd]:
    """The ended attempts of ``task`` that say where they ran, in journal order."""
    ends: list[AttemptEnd] = []
    host: str | None = None  # the host of the attempt started last and not yet ended
    try:
        events = task.events()
    except OSError:
        return []
    sweep = sweep_of(task.task_id)
    for event in events:
        if event.kind == START:
            named = event.extras.get("node") or event.extras.get("host")
            host = named if isinstance(named, str) and named else None
        elif event.kind in (EXIT, RUNNER_LOST) and host is not None:
            ends.append(
                AttemptEnd(
                    host,
                    task.task_id,
                    sweep,
                    event.cause if event.cause or event.kind == EXIT else "node_fail",
                    event.reason,
                    _number(event.extras.get("epoch_seconds")),
                    iso_seconds(event.time),
                )
            )
            host = None
    return ends


def clears(run_root: str | os.PathLike[str]) -> list[Clear]:
    """The run root's recorded clears, as the pure rule takes them (a record without a time: none)."""
    out = []
    for record in read_clears(run_root):
        moment = iso_seconds(record.time)
        if moment is not None:
            out.append(Clear(moment, None if record.hosts is None else frozenset(record.hosts)))
    return out


def host_table(
    run_root: str | os.PathLike[str],
    tasks: Sequence[TaskDir],
    *,
    bad_ends: int,
    share: float,
    nodes: Sequence[str] | None,
) -> list[HostRow]:
    """The bad-host table of ``tasks`` (a run root's), with its clears (see `host_rows`)."""
    ends = [end for task in tasks for end in attempt_ends(task)]
    return host_rows(ends, bad_ends=bad_ends, share=share, nodes=nodes, clears=clears(run_root))


def avoid_bad_hosts(
    run_root: str | os.PathLike[str],
    tasks: Sequence[TaskDir],
    backend: AvoidHosts,
    policy: Policy,
    log: Callable[[str], None],
) -> list[str]:
    """Tell ``backend`` which hosts its next submissions exclude (`host_table` under ``policy``'s
    ``host_bad_ends`` and ``max_excluded_share``); say each in one line; return them."""
    if policy.host_bad_ends <= 0:
        backend.avoid([])
        return []
    rows = host_table(
        run_root, tasks, bad_ends=policy.host_bad_ends, share=policy.max_excluded_share, nodes=backend.nodes()
    )
    hosts = excluded_hosts(rows)
    backend.avoid(hosts)
    for row in rows:
        if row.excluded:
            log(f"excluding host {row.host} from submissions: {row.why}")
    return hosts


def clear_hosts(run_root: str | os.PathLike[str], hosts: Sequence[str] | None) -> HostsCleared:
    """Record that ``hosts`` (None: all) start again with no bad ends, from now; return the record."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    record = HostsCleared(
        now_iso(),
        None if hosts is None else tuple(sorted(set(hosts))),
        {"host": socket.gethostname(), "pid": os.getpid(), "user": user},
    )
    append_clear(Path(run_root), record)
    return record


__all__ = ["attempt_ends", "avoid_bad_hosts", "clear_hosts", "clears", "host_table", "sweep_of"]
