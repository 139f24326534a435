"""A task's attempts as an inline SVG bar and an HTML table (no matplotlib needed).

Contract: every task-provided string is escaped (`html.escape`); times are shown in this
machine's local time; an attempt with no recorded end is drawn as a short stub, or up to the
next attempt's start, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from candle_restart.report.collect import Attempt

OUTCOME_COLORS = {
    "completed": "#43a047",
    "preempted": "#fb8c00",
    "failed": "#e53935",
    "bad_input": "#b71c1c",
    "running": "#1e88e5",
    "lost": "#9e9e9e",
    "stood down": "#cfd8dc",
}
WIDTH, HEIGHT = 600, 16


def clock(t: datetime | None) -> str:
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def _length(a: Attempt) -> float | None:
    return (a.end - a.start).total_seconds() if a.start and a.end else None


def svg(attempts: Sequence[Attempt], now: datetime) -> str:
    """One bar: each attempt a segment from its start to its end, coloured by how it ended."""
    timed = [a for a in attempts if a.start is not None]
    if not timed:
        return ""
    t0 = min(a.start for a in timed if a.start is not None)
    ends: list[datetime] = []
    for i, a in enumerate(timed):
        nxt = timed[i + 1].start if i + 1 < len(timed) else None
        ends.append(a.end or (now if a.outcome == "running" else nxt or t0))
    span = max((max(ends) - t0).total_seconds(), 1e-3)
    parts = [
        f'<svg class="timeline" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'role="img" aria-label="attempts over time">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#f5f5f5"/>',
    ]
    for a, end in zip(timed, ends, strict=True):
        assert a.start is not None
        x = (a.start - t0).total_seconds() / span * WIDTH
        w = max((end - a.start).total_seconds() / span * WIDTH, 3.0)  # a lost one is at least a stub
        tip = f"attempt {a.number}: {a.outcome}" + (
            f" (exit {a.exit_code})" if a.exit_code is not None else ""
        )
        tip += f", {clock(a.start)} to {clock(a.end) if a.end else 'no recorded end'}, {a.where}"
        color = OUTCOME_COLORS.get(a.outcome, "#000000")
        parts.append(
            f'<rect x="{x:.1f}" y="1" width="{w:.1f}" height="{HEIGHT - 2}" fill="{color}" '
            f'stroke="#ffffff" stroke-width="1"><title>{escape(tip)}</title></rect>'
        )
    parts.append("</svg>")
    return "".join(parts)


def table(attempts: Sequence[Attempt]) -> str:
    """The attempts as rows: number, start, end, duration, outcome, exit code, where, reason."""
    if not attempts:
        return '<p class="muted">No attempt has started.</p>'
    rows = []
    for a in attempts:
        color = OUTCOME_COLORS.get(a.outcome, "#000000")
        rows.append(
            "<tr>"
            f"<td>{a.number}</td><td>{clock(a.start)}</td><td>{clock(a.end)}</td>"
            f"<td>{duration(_length(a))}</td>"
            f'<td><span class="dot" style="background:{color}"></span>{escape(a.outcome)}</td>'
            f"<td>{'-' if a.exit_code is None else a.exit_code}</td>"
            f"<td>{escape(a.where)}</td><td>{escape(a.reason)}</td>"
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("#", "start", "end", "took", "ended", "exit", "where", "reason"))
    return f'<table class="attempts"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
