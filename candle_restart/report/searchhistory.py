"""The report's search history: each trial of a ``search:`` sweep in ask order, its outcome and the best so far.

Read from the run root's own records only: the search log ``.search-<name>.jsonl``
(`candle_restart.records.search`) and the tasks' states; the trial number is in each trial's
task id (``<name>-tNNNN-<hash>``).  A population-based search's members also show the lineage:
the parent checkpoint each started from (`candle_restart.report.lineage`).  A run root without a search log has no history (``""``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.search import TellRecord, read_tells
from candle_restart.report.collect import TaskReport
from candle_restart.report.lineage import lineage

_LOG = re.compile(r"^\.search-(.+)\.jsonl$")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _one(root: Path, name: str, tells: list[TellRecord], tasks: Sequence[TaskReport]) -> str:
    trial_of = re.compile(re.escape(name) + r"-t(\d{4,})-")
    trials = sorted(
        (int(m.group(1)), t) for t in tasks if (m := trial_of.match(t.task_id)) is not None
    )
    told = {t.trial: t for t in tells}
    metric = next((t.metric for t in tells if t.metric), None) or "metric"
    maximize = any(t.direction == "maximize" for t in tells)
    best: float | None = None
    rows = []
    lines = {number: lineage(Path(root) / task.task_id) for number, task in trials}
    started = any(line is not None for line in lines.values())  # a population's: where each began
    for number, task in trials:
        tell = told.get(number)
        value = tell.value if tell and tell.state == "complete" else None
        if value is not None and (best is None or (value > best if maximize else value < best)):
            best = value
        rows.append(
            f"<tr><td>{number}</td><td>{escape(task.task_id)}</td><td>{escape(task.status.state)}</td>"
            f"<td>{_number(value)}</td><td>{_number(best)}</td>"
            + (f"<td>{escape(line.text if (line := lines[number]) else 'fresh start')}</td>" if started else "")
            + "</tr>"
        )
    goal = "max" if maximize else "min"
    return (
        f"<h3>{escape(name)}: {len(trials)} trials, {escape(metric)} ({goal})</h3>"
        f"<table><thead><tr><th>trial</th><th>task</th><th>state</th><th>{escape(metric)}</th>"
        f"<th>best so far</th>{'<th>started from</th>' if started else ''}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def section(root: Path, tasks: Sequence[TaskReport]) -> str:
    """The page's "Search history" section ("" when ``root`` holds no search log)."""
    parts = []
    for path in sorted(Path(root).glob(".search-*.jsonl")):
        match = _LOG.match(path.name)
        if match is None:
            continue
        try:
            tells = read_tells(path)
        except (CkptError, OSError) as exc:
            parts.append(f"<p>{escape(str(exc))}</p>")
            continue
        parts.append(_one(root, match.group(1), tells, tasks))
    if not parts:
        return ""
    return '<section id="search"><h2>Search history</h2>' + "".join(parts) + "</section>"
