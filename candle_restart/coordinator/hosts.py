"""Bad hosts: which hosts a sweep's next submissions should avoid, and why. Pure: no file, no clock.

The facts are the attempt ends the runners and coordinators already record (`AttemptEnd`, read from
each task's ``runs.jsonl`` and ``journal.jsonl`` by `candle_restart.coordinator.hostfacts`). An end
is *bad* for the host it ran on (its Slurm node name when recorded, else its host name) when:

* ``hang``: the runner's watchdog stopped the training (cause ``hang``);
* ``node_fail``: the runner was lost with its node (cause ``node_fail``);
* ``error``: the training failed, and the same task ran on another host without failing there
  with the same reason (an error reproduced elsewhere is the task's, not the host's; a task that
  ran on one host only says nothing of it);
* ``slow``: the attempt's median epoch took more than `SLOW_FACTOR` times the median of the same
  sweep's other hosts (each host's median epoch over its attempts; at least `MIN_PEERS` hosts).

An end counts at most once, under the first of these that applies. Ends before a clear of their
host (`Clear`; ``candle-restart hosts --clear``) are forgotten: they count neither as attempts nor
as bad ends (they still serve as other hosts' evidence).

`host_rows` decides: a host with at least ``bad_ends`` bad ends (0: never) is avoided, worst
first (most bad ends, then name), up to ``floor(share * len(nodes))`` hosts; ``nodes`` are the
hosts a submission may land on (a Slurm partition's nodes); a host that is not one of them is not
excluded (the scheduler would refuse its name), and with ``nodes`` None (the executor cannot
exclude hosts: local, Parsl's non-Slurm providers) none is.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

BAD_CAUSES: tuple[str, ...] = ("hang", "node_fail", "error", "slow")
SLOW_FACTOR = 2.0  # an attempt's epochs this many times its peers' median are slow
MIN_PEERS = 2  # other hosts of the same sweep with timed attempts needed to call one slow


@dataclass(frozen=True)
class AttemptEnd:
    """One attempt's end: where it ran, of which task and sweep, why it ended (``cause``: None for a
    completed attempt), the end's ``reason``, its median ``epoch_seconds`` (None: not recorded) and
    its ``time`` (seconds since the epoch, the writer's clock; None: not recorded)."""

    host: str
    task_id: str
    sweep: str
    cause: str | None
    reason: str | None = None
    epoch_seconds: float | None = None
    time: float | None = None


@dataclass(frozen=True)
class Clear:
    """A user cleared ``hosts`` (None: every host) at ``time`` (seconds since the epoch)."""

    time: float
    hosts: frozenset[str] | None = None


@dataclass(frozen=True)
class HostRow:
    """One host of the table: attempts and bad ends (by `BAD_CAUSES`) since its last clear, whether
    the next submissions exclude it, and why (or why not)."""

    host: str
    attempts: int
    bad: Mapping[str, int] = field(default_factory=dict)
    excluded: bool = False
    why: str = ""

    @property
    def bad_total(self) -> int:
        return sum(self.bad.values())


def _median_peers(ends: Sequence[AttemptEnd]) -> dict[tuple[str, str], float | None]:
    """For each (sweep, host): the median over the sweep's other hosts of each one's median epoch
    seconds (None: fewer than `MIN_PEERS` other hosts timed an attempt of that sweep)."""
    timed: dict[tuple[str, str], list[float]] = defaultdict(list)
    for end in ends:
        if end.epoch_seconds is not None and end.epoch_seconds > 0:
            timed[(end.sweep, end.host)].append(end.epoch_seconds)
    by_sweep: dict[str, dict[str, float]] = defaultdict(dict)
    for (sweep, host), values in timed.items():
        by_sweep[sweep][host] = statistics.median(values)
    out: dict[tuple[str, str], float | None] = {}
    for sweep, medians in by_sweep.items():
        for host in medians:
            others = [m for h, m in medians.items() if h != host]
            out[(sweep, host)] = statistics.median(others) if len(others) >= MIN_PEERS else None
    return out


def bad_cause(
    end: AttemptEnd, ends: Sequence[AttemptEnd], peers: Mapping[tuple[str, str], float | None]
) -> str | None:
    """Why ``end`` is bad for its host (one of `BAD_CAUSES`), or None; ``ends``: every end (evidence)."""
    if end.cause in ("hang", "node_fail"):
        return end.cause
    if end.cause == "error":
        elsewhere = [e for e in ends if e.task_id == end.task_id and e.host != end.host]
        if elsewhere and not any(e.cause == "error" and e.reason == end.reason for e in elsewhere):
            return "error"
    median = peers.get((end.sweep, end.host))
    if end.epoch_seconds is not None and median is not None and end.epoch_seconds > SLOW_FACTOR * median:
        return "slow"
    return None


def _cleared_at(host: str, clears: Iterable[Clear]) -> float | None:
    times = [c.time for c in clears if c.hosts is None or host in c.hosts]
    return max(times) if times else None


def _counts(bad: Mapping[str, int]) -> str:
    total = sum(bad.values())
    parts = ", ".join(f"{cause} {bad[cause]}" for cause in BAD_CAUSES if bad.get(cause))
    return f"{total} bad end{'s' if total != 1 else ''}" + (f" ({parts})" if parts else "")


def host_rows(
    ends: Sequence[AttemptEnd],
    *,
    bad_ends: int,
    share: float,
    nodes: Sequence[str] | None,
    clears: Sequence[Clear] = (),
) -> list[HostRow]:
    """One row per host seen in ``ends``, worst first (see the module docstring for the rule)."""
    peers = _median_peers(ends)
    by_task: dict[str, list[AttemptEnd]] = defaultdict(list)  # each task's ends: an error's evidence
    for end in ends:
        by_task[end.task_id].append(end)
    attempts: Counter[str] = Counter()
    bad: dict[str, Counter[str]] = defaultdict(Counter)
    for end in ends:
        cleared = _cleared_at(end.host, clears)
        if cleared is not None and (end.time is None or end.time < cleared):
            continue
        attempts[end.host] += 1
        cause = bad_cause(end, by_task[end.task_id], peers)
        if cause is not None:
            bad[end.host][cause] += 1
    order = sorted(attempts, key=lambda h: (-sum(bad[h].values()), h))
    candidates = [h for h in order if bad_ends > 0 and sum(bad[h].values()) >= bad_ends]
    known = set(nodes) if nodes is not None else set()
    limit = math.floor(share * len(known) + 1e-9)
    excluded = [h for h in candidates if h in known][:limit] if nodes is not None else []
    rows: list[HostRow] = []
    for host in order:
        counts = {cause: bad[host][cause] for cause in BAD_CAUSES if bad[host][cause]}
        said = _counts(counts)
        if bad_ends <= 0:
            why = f"{said}; host exclusion is off (host_bad_ends 0)"
        elif host not in candidates:
            why = f"{said}, fewer than {bad_ends}" if counts else ""
        elif host in excluded:
            why = f"{said}, at least {bad_ends}; excluded ({len(excluded)} of at most {limit}: {share:g} of {len(known)} nodes)"
        elif nodes is None:
            why = f"{said}, at least {bad_ends}; not excluded: this executor cannot exclude hosts"
        elif host not in known:
            why = f"{said}, at least {bad_ends}; not excluded: not one of the partition's {len(known)} nodes"
        else:
            why = (
                f"{said}, at least {bad_ends}; not excluded: at most {limit} of {len(known)} nodes "
                f"(max_excluded_share {share:g}), worse hosts first"
            )
        cleared = _cleared_at(host, clears)
        if cleared is not None:
            why = f"{why}{'; ' if why else ''}counted since a clear"
        rows.append(HostRow(host, attempts[host], counts, host in excluded, why))
    return rows


def excluded_hosts(rows: Iterable[HostRow]) -> list[str]:
    """The hosts of ``rows`` the next submissions exclude, sorted."""
    return sorted(r.host for r in rows if r.excluded)


__all__ = [
    "BAD_CAUSES",
    "MIN_PEERS",
    "SLOW_FACTOR",
    "AttemptEnd",
    "Clear",
    "HostRow",
    "bad_cause",
    "excluded_hosts",
    "host_rows",
]
