"""Goodput: where a task's wall time went, split into named parts that add up to it.

Pure: facts in (`AttemptFacts`, times in seconds since the epoch), a `Breakdown` out; nothing
here reads a file (`candle_restart.report.goodfacts` gathers the facts from a task directory).

A task's wall time runs from its first submission (its first runner start when none is
recorded) to its last attempt's end (now, while one runs). Each second of it is in exactly
one part (`PARTS`, in this order):

* ``productive``: training whose result survived: from the first training step to the moment
  the last surviving checkpoint was taken (the one the next attempt resumed from; every step of
  an attempt that completed), less the time checkpoints blocked training in that span;
* ``lost``: training after the last surviving checkpoint was taken (redone by a later attempt,
  or never kept), less the time checkpoints blocked it;
* ``checkpoint``: training blocked by checkpoints (each commit's ``blocked_seconds``);
* ``restore``: choosing, verifying and loading the restart checkpoint (the restart's ``seconds``);
* ``startup``: the runner's start to the first training step, less the restore (imports,
  building and compiling the model, the first batch);
* ``stopping``: the last training step to the runner's recorded end (the final commit's
  flush, the process's exit; for an attempt halted before its walltime, the margin it left);
* ``failed``: every second of an attempt that ended failed, except its productive training;
* ``queue``: the scheduler's own queue wait of each attempt (Slurm's Start less its Submit, which
  the runner records); where the scheduler does not say (local, Parsl) none is counted, and
  `Breakdown.queue_wait` is None: unknown, not zero;
* ``launch``: the rest of each attempt's submission to its runner's start (sbatch, a job's
  start-up, a local process's or Parsl worker's launch; an executor's retry of the same
  submission: from the previous attempt's end);
* ``between``: the rest: an attempt's end to the next submission (the coordinator's pass).

``goodput`` is ``productive`` over the wall time. Clocks of different hosts may disagree: every
span is clamped so that no part is negative and the parts still sum to the wall time exactly.

Besides the parts, `Breakdown.halt_unused`: for each attempt halted before its walltime (cause
``timeout``), the allocation's end less the runner's end: allocation time that nobody used (not
part of the wall time: the allocation is given back). None when some halt's allocation end is not
recorded (only Slurm's is).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from candle_restart.records.jsontypes import JsonObject

PARTS: tuple[str, ...] = (
    "productive",
    "lost",
    "checkpoint",
    "restore",
    "startup",
    "stopping",
    "failed",
    "queue",
    "launch",
    "between",
)
BADPUT: tuple[str, ...] = PARTS[1:]


@dataclass(frozen=True)
class CommitFacts:
    """One committed checkpoint of an attempt: when its state was ``taken``, how long it ``blocked``
    training, and its ``key`` (``epochs/NNN`` and position) that a restart names."""

    taken: float
    blocked: float = 0.0
    key: str = ""


@dataclass(frozen=True)
class AttemptFacts:
    """What the records say of one attempt (times in seconds since the epoch; None: not recorded).

    ``resumed_key``: the checkpoint key its restart loaded (None: a fresh start or unknown);
    ``train_start``: its first training step (None: the restart's end, else its start);
    ``train_end``: its last training event (None: its start of training);
    ``ended``: the runner's end (None: still running; `breakdown` is given ``now``);
    ``cause``: why it ended (``timeout``: halted before its walltime); ``allocation_end``: when
    its allocation's time limit ends (the scheduler's, recorded by the runner; None: unknown).
    """

    attempt: int
    started: float
    ended: float | None = None
    submitted: float | None = None
    scheduler_queue: float | None = None  # the scheduler's own queue wait (Slurm's Start - Submit)
    status: str | None = None
    restore_seconds: float | None = None
    restored_at: float | None = None
    resumed_key: str | None = None
    train_start: float | None = None
    train_end: float | None = None
    commits: tuple[CommitFacts, ...] = ()
    cause: str | None = None
    allocation_end: float | None = None


@dataclass(frozen=True)
class Breakdown:
    """Seconds by part (every name of `PARTS`) over ``wall`` seconds; the parts sum to ``wall``.

    ``queue_wait``: the scheduler's queue wait (None: it did not say for some attempt);
    ``halt_unused``: allocation time left after halts before the walltime (None: not known).
    """

    wall: float
    parts: Mapping[str, float]
    attempts: tuple[Breakdown, ...] = field(default=())
    queue_wait: float | None = None
    halt_unused: float | None = 0.0

    @property
    def productive(self) -> float:
        return self.parts["productive"]

    @property
    def goodput(self) -> float | None:
        """``productive`` over ``wall`` (None for no wall time)."""
        return self.productive / self.wall if self.wall > 0 else None

    def badput(self) -> dict[str, float]:
        """The parts that are not productive, largest first (zeros left out)."""
        out = {name: self.parts[name] for name in BADPUT if self.parts[name] > 0}
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def to_json(self) -> JsonObject:
        """``wall_seconds``, ``goodput`` (a fraction), ``parts`` (seconds by name), rounded to ms;
        a task's also ``attempts``: each attempt's, in order (its queue and the gaps are the task's)."""
        good = self.goodput
        doc: JsonObject = {
            "wall_seconds": round(self.wall, 3),
            "goodput": None if good is None else round(good, 4),
            "parts": {name: round(self.parts[name], 3) for name in PARTS},  # seconds
            "queue_wait_seconds": None if self.queue_wait is None else round(self.queue_wait, 3),
            "halt_unused_seconds": None if self.halt_unused is None else round(self.halt_unused, 3),
        }
        if self.attempts:
            doc["attempts"] = [one.to_json() for one in self.attempts]
        return doc


def _zero() -> dict[str, float]:
    return dict.fromkeys(PARTS, 0.0)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(value, high))


def survived_until(attempts: Sequence[AttemptFacts]) -> list[float | None]:
    """For each attempt, the time up to which its training survived (None: none of it did).

    An attempt survives up to the commit the next attempt resumed from (matched by key; the
    last such commit); an attempt with no successor up to its end when it completed, else up
    to its last commit (what a resume would load).
    """
    out: list[float | None] = []
    for index, facts in enumerate(attempts):
        following = attempts[index + 1] if index + 1 < len(attempts) else None
        if following is None:
            if facts.status == "completed":
                out.append(float("inf"))
            else:
                out.append(max((c.taken for c in facts.commits), default=None))
            continue
        matches = [
            c.taken
            for c in facts.commits
            if following.resumed_key is not None and c.key == following.resumed_key
        ]
        out.append(max(matches) if matches else None)
    return out


def halt_unused(facts: AttemptFacts) -> float | None:
    """The allocation left when an attempt halted before its walltime (0: no such halt; None: unknown)."""
    if facts.cause != "timeout" or facts.ended is None:
        return 0.0
    return None if facts.allocation_end is None else max(0.0, facts.allocation_end - facts.ended)


def _sum_known(values: Iterable[float | None]) -> float | None:
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def attempt_breakdown(facts: AttemptFacts, survived: float | None, now: float) -> Breakdown:
    """The parts of one attempt, from its runner's start to its end (``now`` while it runs)."""
    start = facts.started
    end = max(start, facts.ended if facts.ended is not None else now)
    first = facts.train_start if facts.train_start is not None else facts.restored_at
    first = _clamp(first if first is not None else start, start, end)
    last = _clamp(facts.train_end if facts.train_end is not None else first, first, end)
    restore = _clamp(facts.restore_seconds or 0.0, 0.0, first - start)
    taken = first if survived is None else _clamp(survived, first, last)
    blocked_before = sum(c.blocked for c in facts.commits if c.taken <= taken)
    blocked_after = sum(c.blocked for c in facts.commits if c.taken > taken)
    before = _clamp(blocked_before, 0.0, taken - first)
    after = _clamp(blocked_after, 0.0, last - taken)
    parts = _zero()
    parts["productive"] = taken - first - before
    parts["checkpoint"] = before + after
    parts["lost"] = last - taken - after
    parts["restore"] = restore
    parts["startup"] = first - start - restore
    parts["stopping"] = end - last
    if facts.status == "failed":  # all but its surviving training counts as a failed attempt
        parts["failed"] = sum(v for k, v in parts.items() if k != "productive")
        for name in ("lost", "checkpoint", "restore", "startup", "stopping"):
            parts[name] = 0.0
    return Breakdown(end - start, parts, queue_wait=facts.scheduler_queue, halt_unused=halt_unused(facts))


def breakdown(attempts: Sequence[AttemptFacts], now: float, submitted: float | None = None) -> Breakdown:
    """The task's parts over its wall time (see the module docstring); ``attempts`` in order.

    ``submitted``: the task's first submission (None: its first attempt's, else its start).
    """
    if not attempts:
        return Breakdown(0.0, _zero())
    first = min(t for t in (submitted, attempts[0].submitted, attempts[0].started) if t is not None)
    last = max(a.ended if a.ended is not None else now for a in attempts)
    wall = max(0.0, last - first)
    parts = _zero()
    per: list[Breakdown] = []
    previous_end: float | None = None
    for facts, survived in zip(attempts, survived_until(attempts), strict=True):
        one = attempt_breakdown(facts, survived, now)
        per.append(one)
        for name in PARTS:
            parts[name] += one.parts[name]
        queued = max(0.0, facts.scheduler_queue or 0.0)
        parts["queue"] += queued
        if facts.submitted is not None:  # a retry of the same submission launches from the last end
            since = facts.submitted if previous_end is None else max(facts.submitted, previous_end)
            parts["launch"] += max(0.0, facts.started - since - queued)
        previous_end = facts.started + one.wall
    covered = sum(parts.values())
    if covered > wall:  # hosts' clocks disagree: trim the spans measured across hosts first
        excess = covered - wall
        for name in ("launch", "queue", "stopping", "startup"):
            cut = min(parts[name], excess)
            parts[name] -= cut
            excess -= cut
        wall += excess  # attempts' own spans overlap (clock skew): the wall is at least their sum
    parts["between"] = wall - sum(v for k, v in parts.items() if k != "between")
    return Breakdown(
        wall,
        parts,
        tuple(per),
        queue_wait=_sum_known(a.scheduler_queue for a in attempts),
        halt_unused=_sum_known(one.halt_unused for one in per),
    )


def total(breakdowns: Iterable[Breakdown]) -> Breakdown:
    """A sweep's parts: each task's summed (task-seconds, not the sweep's elapsed time)."""
    parts = _zero()
    wall = 0.0
    listed = list(breakdowns)
    for one in listed:
        wall += one.wall
        for name in PARTS:
            parts[name] += one.parts[name]
    queue = _sum_known(one.queue_wait for one in listed) if listed else None
    return Breakdown(wall, parts, queue_wait=queue, halt_unused=_sum_known(one.halt_unused for one in listed))


__all__ = [
    "BADPUT",
    "PARTS",
    "AttemptFacts",
    "Breakdown",
    "CommitFacts",
    "attempt_breakdown",
    "breakdown",
    "halt_unused",
    "survived_until",
    "total",
]
