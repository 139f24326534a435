"""The status table of ``candle-restart status`` and the summary line of counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from candle_restart.coordinator.states import STATES, TaskStatus

COLUMNS = ("task", "state", "epoch", "best", "attempts", "exit", "job", "ckpt age", "reason")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def row(status: TaskStatus, now: datetime) -> tuple[str, ...]:
    epoch = (
        "-"
        if status.epoch is None
        else f"{status.epoch}/{status.epochs if status.epochs is not None else '?'}"
    )
    best = "-" if status.best_metric is None else f"{status.best_metric:.4g}"
    return (
        status.task_id,
        status.state,
        epoch,
        best,
        str(status.attempts),
        "-" if status.last_exit is None else str(status.last_exit),
        status.job_id or "-",
        _age(status.ckpt_age_seconds(now)),
        status.reason[:70],
    )


def summary(statuses: Sequence[TaskStatus]) -> str:
    counts = Counter(s.state for s in statuses)
    parts = [f"{counts[state]} {state}" for state in STATES if counts[state]]
    return f"{len(statuses)} tasks: " + (", ".join(parts) if parts else "none")


def table(statuses: Sequence[TaskStatus], now: datetime | None = None) -> str:
    now = now or datetime.now()
    rows = [COLUMNS, *(row(s, now) for s in statuses)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows
    ]
    return "\n".join([*lines, summary(statuses)])
