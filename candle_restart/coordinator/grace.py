"""How long something has waited, measured on this host's clock only: a submission intent without
an outcome (`Policy.reconcile_grace`) and a failure before its retry (`Policy.backoff_seconds`).

A coordinator that recorded ``submit_intent`` and died leaves an intent without an outcome; the
next one reconciles it after the grace.  The intent's ``time`` (like a runner's ``exit`` time) is
its writer's clock, and hosts' clocks may disagree by minutes: compared with this host's clock, an
intent stamped by a host 10 minutes ahead would wait 10 minutes more than the grace, one stamped
by a host behind would be reconciled at once.  So no stamp of another host is ever compared with
this host's clock:

* an intent this host recorded (its ``by.host`` is this host's name), or a failure whose runner
  ran on this host (its ``exit``'s ``host``), is timed from its ``time``, which is this clock's;
* anything else from when this host first saw it, recorded on this host's clock in
  ``<task>/.seen/<host>`` (`SightingRecord`: one file per host, so one writing host), so that a
  later pass in another process (a ``resume`` run by cron) goes on counting; where that file
  cannot be written (a dry run, a read-only task), from this process's first sight of it.

A lost intent is so reconciled at most one grace period (and one pass) after this host first saw
it, whatever the clocks say; a failure is retried one backoff after this host first saw it (a
submission that ended before its runner started, which records no exit, too).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from datetime import datetime
from pathlib import Path

from candle_restart.coordinator.taskstatus import TaskStatus
from candle_restart.errors import CkptError
from candle_restart.records.holder import SightingRecord
from candle_restart.runtime import fsio
from candle_restart.task.taskdir import TaskDir

SEEN_DIR = ".seen"
_FIRST_SEEN: dict[tuple[str, str], float] = {}  # (task path, what) -> this process's first sight


def sighting_file(task: TaskDir, host: str) -> Path:
    """``<task>/.seen/<host>`` (the host name made a safe file name)."""
    return task.path / SEEN_DIR / (re.sub(r"[^A-Za-z0-9_.-]", "_", host).lstrip(".") or "_")


def _own_age(stamp: str | None, now: float) -> float | None:
    """Seconds since ``stamp``, a time of this host's clock; None when it cannot be read or lies
    in the future (this clock was stepped back)."""
    try:
        seconds = datetime.fromisoformat(stamp).timestamp() if stamp else None
    except (ValueError, OverflowError, OSError):
        return None
    return now - seconds if seconds is not None and seconds <= now else None


def seen_for(task: TaskDir, what: str, *, record: bool = True, now: float | None = None) -> float:
    """Seconds since this host first saw ``what`` for ``task`` (0 at the first sight, recorded in
    `sighting_file` when ``record``); see the module."""
    now = time.time() if now is None else now
    host = socket.gethostname()
    path = sighting_file(task, host)
    with contextlib.suppress(OSError, CkptError):
        seen = SightingRecord.read(path)
        if seen.what == what and seen.host == host and seen.since <= now:
            return now - seen.since
    first = _FIRST_SEEN.setdefault((str(task.path), what), now)
    if record:
        with contextlib.suppress(OSError):
            path.parent.mkdir(exist_ok=True)
            fsio.atomic_write_bytes(path, SightingRecord(host, what, first).to_bytes())
    return now - first


def observe(task: TaskDir, status: TaskStatus, *, record: bool = True) -> TaskStatus:
    """``status`` with ``intent_age`` (a pending intent) or ``exit_age`` (a failed task) measured
    on this host's clock (see the module); returns it."""
    now, here = time.time(), socket.gethostname()
    if status.pending_intent is not None:
        own = _own_age(status.intent_time, now) if status.extra.intent_host == here else None
        what = f"submission {status.pending_intent} without outcome"
        status.intent_age = own if own is not None else seen_for(task, what, record=record, now=now)
    elif status.state == "failed" and status.last_exit_time is not None:
        own = _own_age(status.last_exit_time, now) if status.extra.exit_host == here else None
        what = f"failure {status.failures} ended {status.last_exit_time}"  # the stamp names it, never timed
        status.exit_age = own if own is not None else seen_for(task, what, record=record, now=now)
    elif status.state == "failed":  # no exit recorded: its submission ended before a runner started
        what = f"failure {status.failures} of submission {status.generation}, no runner"
        status.exit_age = seen_for(task, what, record=record, now=now)
    return status
