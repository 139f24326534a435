"""The status table of ``candle-restart status``, the summary line of counts, and the varied parameters.

* `varied_keys`: the gParameters whose values differ between the tasks (what tells tasks apart);
* `row`: one task's cells (the reason in full);
* `fit`: text columns fitted to a width: the last column (the reason) wrapped, never cut;
  when even that does not fit, the least useful columns are left out, and a line says which;
* `table`: all of it, with the summary line last.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from candle_restart.coordinator.states import STATES, TaskStatus

COLUMNS = ("task", "state", "epoch", "best", "attempts", "exit", "job", "ckpt age", "cause", "reason")
DROP_FIRST = ("job", "ckpt age", "exit", "attempts", "cause")  # left out, in this order, when the width is short
MIN_WRAP = 20  # the narrowest the wrapped last column gets before columns are left out
MAX_CELL = 24  # a parameter value longer than this is shortened in text tables (in full in JSON)


def varied_keys(params: Sequence[Mapping[str, object]]) -> list[str]:
    """The keys whose values are not the same in every one of ``params`` (missing counts as a
    value), sorted."""
    keys: set[str] = set()
    for p in params:
        keys.update(p)
    missing = object()
    return sorted(k for k in keys if len({_canonical(p.get(k, missing)) for p in params}) > 1)


def _canonical(value: object) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=repr)
    except (ValueError, TypeError, RecursionError):
        return repr(value)


def cell(value: object, limit: int = MAX_CELL) -> str:
    """A parameter or result value as one short text cell (``-`` for none)."""
    if value is None:
        return "-"
    text = (
        value
        if isinstance(value, str)
        else _canonical(value)
        if not isinstance(value, float)
        else f"{value:.6g}"
    )
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return "…" + text[1 - limit :] if "/" in text else text[: limit - 1] + "…"  # a path: its end tells


def _age_text(seconds: float | None) -> str:
    """An age in seconds as short text: ``42s``, ``3.5m``, ``1.2h``, ``2.0d`` (``-`` for none)."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def row(status: TaskStatus, now: datetime) -> tuple[str, ...]:
    """The cells of `COLUMNS` for one task; the reason in full."""
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
        _age_text(status.ckpt_age_seconds(now)),
        status.cause or "-",  # why the latest attempt ended (coordinator/causes.py)
        " ".join(status.reason.split()),
    )


def summary(statuses: Sequence[TaskStatus]) -> str:
    counts = Counter(s.state for s in statuses)
    parts = [f"{counts[state]} {state}" for state in STATES if counts[state]]
    return f"{len(statuses)} tasks: " + (", ".join(parts) if parts else "none")


def terminal_width() -> int | None:
    """The width to fit tables to: ``$COLUMNS``, else the terminal's; None when stdout is not a terminal."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    return None


def fit(
    header: Sequence[str], rows: Sequence[Sequence[str]], width: int | None, drop: Sequence[str] = ()
) -> list[str]:
    """Lines of a table whose last column is wrapped to fit ``width`` (None: one line per row).

    When the other columns leave the last one under `MIN_WRAP` characters (or its longest text,
    when shorter), the columns named
    in ``drop`` are left out in that order until it fits, and a last line names them.
    """
    keep = list(range(len(header)))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fixed() -> int:
        return sum(widths[i] + 2 for i in keep[:-1])

    need = min(MIN_WRAP, max(len(r[-1]) for r in [header, *rows]))  # a short last column needs less
    left_out = []
    for name in drop:
        if width is None or width - fixed() >= need:
            break
        if name in header[:-1]:
            i = list(header).index(name)
            keep.remove(i)
            left_out.append(name)
    indent = fixed()
    wrap = None if width is None else max(width - indent, need)
    lines = []
    for r in [header, *rows]:
        head = "".join(r[i].ljust(widths[i] + 2) for i in keep[:-1])
        text = r[keep[-1]]
        parts = [text] if wrap is None else textwrap.wrap(text, wrap, break_on_hyphens=False) or [""]
        lines.append((head + parts[0]).rstrip())
        lines.extend(" " * indent + p for p in parts[1:])
    if left_out:
        note = f"(left out for the width: {', '.join(left_out)}; widen the terminal or use --json)"
        lines.extend(textwrap.wrap(note, width) if width else [note])
    return lines


def table(
    statuses: Sequence[TaskStatus],
    now: datetime | None = None,
    width: int | None = None,
    *,
    params: bool = True,
) -> str:
    """The status table: task, the varied parameters, state, epoch, ..., reason; the summary line last.

    ``width`` None fits nothing (one line per task); pass `terminal_width()` for a terminal.
    """
    now = now or datetime.now().astimezone()
    keys = varied_keys([s.params for s in statuses]) if params else []
    header = (COLUMNS[0], *keys, *COLUMNS[1:])
    rows = [(r[0], *(cell(s.params.get(k)) for k in keys), *r[1:]) for s in statuses for r in [row(s, now)]]
    widest = sorted(keys, key=lambda k: -max(len(r[1 + keys.index(k)]) for r in [header, *rows]))
    drop = (*DROP_FIRST, *widest)  # then the parameters with the widest values (paths) first
    return "\n".join([*fit(header, rows, width, drop), summary(statuses)])
