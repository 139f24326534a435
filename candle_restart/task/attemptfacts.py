"""What the runner records of an attempt besides its outcome: where and how long it queued, and its pace.

* `scheduler_facts` (into the ``start`` event): under Slurm, ``node`` (``SLURMD_NODENAME``, the
  name ``--exclude`` takes, which may differ from the host name), ``queue_seconds`` (the job's
  start less its submission, both Slurm's own times, so no two clocks are compared) and
  ``allocation_end`` (when the job's time limit ends, ISO 8601 in UTC; left out for a job without
one, which Slurm shows as a year after its start), from one
  ``squeue -h -j $SLURM_JOB_ID -o %V|%S|%e``. Elsewhere, or when squeue does not answer, the
  keys are left out: unknown, never zero.
* `epoch_seconds` (into the ``exit`` event): the median gap between the attempt's consecutive
  epoch ends in ``ckpts/events.jsonl`` (from its first training step for the first), for the
  bad-host record's comparison with peers (`candle_restart.coordinator.hosts`).

Contract: neither raises; a record that cannot be read gives no figure.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

from candle_restart.records.epochs import EventFileError, read_events
from candle_restart.records.jsontypes import JsonObject
from candle_restart.runtime.deadline import UNLIMITED_DAYS, Runner, run_command
from candle_restart.runtime.envvars import SLURM_JOB_ID, SLURMD_NODENAME


def _local_time(text: str) -> float | None:
    """Slurm's local time without a zone (``2026-12-06T23:05:36``) as seconds since the epoch."""
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:  # Unknown, N/A, NONE
        return None


def scheduler_facts(env: Mapping[str, str] | None = None, run: Runner = run_command) -> JsonObject:
    """The Slurm facts of this attempt (see the module docstring); empty outside Slurm."""
    env = os.environ if env is None else env
    facts: JsonObject = {}
    if env.get(SLURMD_NODENAME):
        facts["node"] = env[SLURMD_NODENAME]
    job = env.get(SLURM_JOB_ID)
    out = run(["squeue", "-h", "-j", job, "-o", "%V|%S|%e"]) if job else None
    fields = out.strip().splitlines()[0].split("|") if out and out.strip() else []
    if len(fields) == 3:
        submit, start, end = (_local_time(f) for f in fields)
        if submit is not None and start is not None and start >= submit:
            facts["queue_seconds"] = round(start - submit, 3)
        if end is not None and start is not None and end - start < UNLIMITED_DAYS * 86400:  # else: no limit
            facts["allocation_end"] = datetime.fromtimestamp(end, timezone.utc).isoformat()
    return facts


def iso_seconds(iso: str | None) -> float | None:
    """An ISO 8601 time as seconds since the epoch; None when absent or not a time (naive is UTC)."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def epoch_seconds(ckpts: Path, since: str | None) -> float | None:
    """The median epoch of the attempt that started at ``since`` (ISO), or None (see the module docstring)."""
    start = iso_seconds(since)
    if start is None:
        return None
    try:
        events = read_events(ckpts)
    except EventFileError:
        return None
    begin: float | None = None
    ends: list[float] = []
    for event in events:
        moment = iso_seconds(event.time)
        if moment is None or moment < start:
            continue
        if event.kind == "train_start" and begin is None:
            begin = moment
        elif event.kind == "epoch":
            ends.append(moment)
    marks = ([begin] if begin is not None else []) + ends
    gaps = [b - a for a, b in pairwise(marks) if b >= a]
    return round(statistics.median(gaps), 3) if gaps else None


__all__ = ["epoch_seconds", "iso_seconds", "scheduler_facts"]
