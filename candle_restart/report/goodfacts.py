"""The facts `candle_restart.report.goodput` splits, read from one task directory.

* attempts: ``runs.jsonl``'s ``start`` and ``exit`` (or ``stale_exit``) of each attempt, its
  status and cause; its submission: the journal's first ``submit_intent`` (else ``submitted``)
  of the same generation; under Slurm the scheduler's queue wait (``queue_seconds``) and the
  allocation's end (``allocation_end``) the runner recorded in ``start``;
* inside each attempt (events whose time falls in its span; the runner and the training share a
  host, so a clock): ``restart`` (when, how long, which checkpoint), ``train_start``, the last
  training event, and each ``commit`` (when its state was taken, how long it blocked, its key).

Contract: never writes; never raises for records that do not read (an unreadable
``events.jsonl`` gives attempts without training facts: their time counts as startup and
stopping, never as productive). ``now`` is the end of an attempt still running.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from candle_restart.records.epochs import EpochEvent, EventFileError, read_events
from candle_restart.records.journal import EXIT, STALE_EXIT, START, SUBMIT_INTENT, SUBMITTED, JournalEvent
from candle_restart.report.goodput import AttemptFacts, Breakdown, CommitFacts, breakdown
from candle_restart.task import TaskDir
from candle_restart.task.attemptfacts import iso_seconds as seconds  # every time read here (naive: UTC)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def checkpoint_key(path: str | None, position: object) -> str | None:
    """The key a commit and the restart that loads it share: ``epochs/NNN`` and the position."""
    if path is None:
        return None
    if isinstance(position, Mapping):
        return f"{path}@{position.get('epoch')}:{position.get('batch')}"
    return path


def _submissions(events: list[JournalEvent]) -> dict[int, float]:
    """Each generation's first submission time."""
    out: dict[int, float] = {}
    for event in events:
        if event.kind in (SUBMIT_INTENT, SUBMITTED) and event.generation is not None:
            moment = seconds(event.time)
            if moment is not None and event.generation not in out:
                out[event.generation] = moment
    return out


def _spans(events: list[JournalEvent]) -> list[tuple[JournalEvent, JournalEvent | None]]:
    """Each attempt's start and end (None: no end recorded), in order."""
    spans: list[tuple[JournalEvent, JournalEvent | None]] = []
    for event in events:
        if event.kind == START and event.attempt is not None:
            spans.append((event, None))
        elif (
            event.kind in (EXIT, STALE_EXIT)
            and spans
            and spans[-1][1] is None
            and event.attempt in (None, spans[-1][0].attempt)
        ):
            spans[-1] = (spans[-1][0], event)
    return spans


def _training(inside: list[EpochEvent]) -> dict[str, object]:
    """The training facts of one attempt's events."""
    facts: dict[str, object] = {}
    commits: list[CommitFacts] = []
    last: float | None = None
    for event in inside:
        moment = seconds(event.time)
        if moment is None:
            continue
        if event.kind == "restart":
            facts["restored_at"] = moment
            facts["restore_seconds"] = event.seconds
            facts["resumed_key"] = checkpoint_key(event.path, event.position)
        elif event.kind == "train_start" and "train_start" not in facts:
            facts["train_start"] = moment
        if event.kind in ("epoch", "commit", "train_start", "disabled"):
            last = moment if last is None else max(last, moment)
        if event.kind == "commit":
            taken = seconds(event.taken)
            if taken is None:  # an older writer: its state was taken before writing and blocking
                taken = moment - (event.write_seconds or 0.0) - (event.blocked_seconds or 0.0)
            commits.append(
                CommitFacts(
                    taken, event.blocked_seconds or 0.0, checkpoint_key(event.path, event.position) or ""
                )
            )
    facts["train_end"] = last
    facts["commits"] = tuple(commits)
    return facts


def task_facts(task: TaskDir, now: float | None = None) -> list[AttemptFacts]:
    """The attempts of ``task`` with what its records say of each (see the module contract)."""
    now = time.time() if now is None else now
    journal = task.events()
    submitted = _submissions(journal)
    try:
        epoch_events = read_events(task.ckpts)
    except EventFileError:
        epoch_events = []
    timed = [(seconds(e.time), e) for e in epoch_events]
    out: list[AttemptFacts] = []
    for begin, end in _spans(journal):
        started = seconds(begin.time)
        if started is None:
            continue
        ended = seconds(end.time) if end is not None else None
        until = ended if ended is not None else now
        inside = [e for t, e in timed if t is not None and started <= t <= until]
        status = (
            (end.status or ("stale" if end.kind == STALE_EXIT else None)) if end is not None else "running"
        )
        training = _training(inside)
        queued = begin.extras.get("queue_seconds")
        out.append(
            AttemptFacts(
                attempt=begin.attempt or len(out) + 1,
                started=started,
                ended=ended,
                submitted=None if begin.generation is None else submitted.get(begin.generation),
                scheduler_queue=float(queued) if isinstance(queued, int | float) and not isinstance(queued, bool) else None,
                status=status,
                cause=end.cause if end is not None else None,
                allocation_end=seconds(_text(begin.extras.get("allocation_end"))),
                **training,  # type: ignore[arg-type]
            )
        )
    return out


def task_breakdown(task_path: str | Path, now: float | None = None) -> Breakdown:
    """The goodput `Breakdown` of the task directory ``task_path`` (never raises for bad records)."""
    now = time.time() if now is None else now
    return breakdown(task_facts(TaskDir(task_path), now), now)


__all__ = ["checkpoint_key", "seconds", "task_breakdown", "task_facts"]
