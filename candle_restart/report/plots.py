"""The report's figures, drawn with matplotlib (the optional ``report`` extra).

* `missing` says, in one line, why plots cannot be drawn (matplotlib absent), or None.
* `draw_tasks` writes one small PNG per task that has a metric: the metric at each epoch end,
  the kept checkpoints, the best epoch (a star) and each restart (a dashed line where training
  resumed; half an epoch further when it resumed inside the next epoch).
* `draw_overview` writes one PNG per metric name with every task's curve, coloured by state.

Speed (500 tasks must not take minutes), measured on 2 cores: a new figure per task costs about
35 ms, one figure cleared and redrawn about 24 ms, one figure whose artists are updated about 12 ms
once the legend and axis labels (the page says what the symbols mean) are left out; a grid of many
tasks per figure saves nothing.  So one figure is reused for all tasks, written as PNG at 90 dpi,
and many tasks are split across forked processes, one per core: 500 tasks take 4 to 7 s.
Files are named by the task's index (``task-00001.png``), never by its id, so no task-provided
text reaches a file name.

Contract: writes only under the ``plots`` directory it is given.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is optional: imported when a figure is drawn
    from matplotlib.figure import Figure

from candle_restart.report.collect import TaskReport
from candle_restart.report.goodput import Breakdown
from candle_restart.task.process import fork_safe

INSTALL_HINT = "pip install 'candle-restart[report]'"
STATE_COLORS = {
    "new": "#9e9e9e",
    "queued": "#64b5f6",
    "running": "#1e88e5",
    "preempted": "#fb8c00",
    "failed": "#e53935",
    "cancelled": "#616161",
    "completed": "#43a047",
    "corrupt": "#8e24aa",
    "pruned": "#795548",
}
_PARALLEL_FROM = 48  # below this, forking workers costs more than it saves
DPI = 90
OVERVIEW_DPI = 110
TASK_SIZE = (5.4, 2.6)  # inches; at DPI, the pixel size the page shows


def missing() -> str | None:
    """None when matplotlib can be imported, else one line saying what to install."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return f"matplotlib is not installed ({INSTALL_HINT})"
    return None


def plain(text: str) -> str:
    """``text`` as matplotlib draws it literally: every ``$`` escaped, so no metric name is
    parsed as mathtext (which fails on names such as ``$x^$``)."""
    return text.replace("$", r"\$")


def task_file(task: TaskReport) -> str:
    return f"task-{task.index:05d}.png"


def has_curve(task: TaskReport) -> bool:
    """True when the task has a metric value to plot (from its log or its kept checkpoints)."""
    return bool(task.values) or any(v is not None for v in task.kept.values())


def _figure(width: float, height: float, dpi: int = DPI) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi)


class _TaskFigure:
    """One figure whose artists are updated for each task (much faster than drawing anew)."""

    def __init__(self) -> None:
        from matplotlib.ticker import MaxNLocator

        self.fig = _figure(*TASK_SIZE)
        self.fig.subplots_adjust(left=0.12, right=0.98, top=0.96, bottom=0.1)
        ax = self.ax = self.fig.add_subplot()
        (self.line,) = ax.plot([], [], "-o", ms=3, lw=1.2, color="#1e88e5", label="epoch end")
        (self.kept,) = ax.plot([], [], "s", ms=6, mfc="none", color="#546e7a", label="kept checkpoint")
        (self.best,) = ax.plot([], [], "*", ms=12, color="#fbc02d", mec="#6d4c41", label="best")
        (self.restarts,) = ax.plot(
            [], [], "--", lw=1, color="#e53935", transform=ax.get_xaxis_transform(), label="restart"
        )
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)

    def draw(self, task: TaskReport, path: str) -> None:
        xs = sorted(task.values)
        ys = [task.values[e] for e in xs]
        self.line.set_data(xs, ys)
        kept = [(e, task.values.get(e, v)) for e, v in sorted(task.kept.items())]
        kept_x = [e for e, v in kept if v is not None]
        kept_y = [v for _, v in kept if v is not None]
        self.kept.set_data(kept_x, kept_y)
        best_x: list[int] = []
        best_y: list[float] = []
        if task.best_epoch is not None and task.best_value is not None:
            best_x, best_y = [task.best_epoch], [task.best_value]
        self.best.set_data(best_x, best_y)
        rx: list[float] = []
        ry: list[float] = []
        for r in task.resumes:  # one dashed line per restart, in one artist (NaN breaks it)
            x = r.epoch + (0.5 if r.mid_epoch else 0)
            rx += [x, x, math.nan]
            ry += [0.0, 1.0, math.nan]
        self.restarts.set_data(rx, ry)
        every = [*ys, *kept_y, *best_y]
        low, high = min(every), max(every)
        pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
        self.ax.set_ylim(low - pad, high + pad)
        first = min([1.0, *(r.epoch for r in task.resumes)])
        last = max([*xs, *task.kept, *(r.epoch + 1 for r in task.resumes), task.status.epochs or 1])
        self.ax.set_xlim(first - 0.5, last + 0.5)
        self.fig.savefig(path, format="png")


def _draw_chunk(tasks: Sequence[TaskReport], plots: str) -> list[int]:
    """Draw each task of ``tasks`` into ``plots``; return the indexes drawn."""
    figure = _TaskFigure()
    drawn = []
    for task in tasks:
        try:
            figure.draw(task, os.path.join(plots, task_file(task)))
        except (ValueError, OverflowError):  # values matplotlib cannot place (near the float range)
            continue  # that task's row shows no plot; the others are drawn
        drawn.append(task.index)
    return drawn


def clear(plots: Path) -> None:
    """Remove the PNGs a previous report wrote here (only ours: task-*.png, overview-*.png, goodput.png)."""
    if plots.is_dir():
        for pattern in ("task-*.png", "overview-*.png", "goodput.png"):
            for old in plots.glob(pattern):
                old.unlink()


def draw_tasks(tasks: Sequence[TaskReport], plots: Path, workers: int | None = None) -> dict[int, str]:
    """Write a PNG for every task with a metric; return {task index: file name}."""
    todo = [t for t in tasks if has_curve(t)]
    plots.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(todo) < _PARALLEL_FROM or "fork" not in mp.get_all_start_methods():
        drawn = _draw_chunk(todo, str(plots))
    else:
        size = -(-len(todo) // workers)
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        with fork_safe(), ProcessPoolExecutor(len(chunks), mp_context=mp.get_context("fork")) as pool:
            drawn = [i for part in pool.map(_draw_chunk, chunks, [str(plots)] * len(chunks)) for i in part]
    by_index = {t.index: t for t in todo}
    return {i: task_file(by_index[i]) for i in drawn}


def overview_figure(name: str, tasks: Sequence[TaskReport]) -> Figure:
    """The figure of one metric: every task's curve coloured by state, whole epochs on the x axis."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(9.0, 3.6, dpi=OVERVIEW_DPI)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.08, right=0.82, top=0.95, bottom=0.13)
    states = set()
    order = list(STATE_COLORS)  # completed under the rest: the tasks to look at are drawn on top
    order.insert(0, order.pop(order.index("completed")))
    for task in sorted(tasks, key=lambda t: order.index(t.status.state)):
        xs = sorted(task.values)
        color = STATE_COLORS.get(task.status.state, "#000000")
        ax.plot(xs, [task.values[e] for e in xs], "-", lw=0.9, alpha=0.7, color=color)
        best = task.best_epoch
        if best is not None and best in task.values:
            ax.plot([best], [task.values[best]], ".", ms=5, color=color)
        states.add(task.status.state)
    for state in (s for s in STATE_COLORS if s in states):
        ax.plot([], [], "-", color=STATE_COLORS[state], label=state)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="state", title_fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers: no tick at 1.25
    ax.set_xlabel("epoch", fontsize=9)
    ax.set_ylabel(plain(name), fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    return fig


def draw_overview(tasks: Sequence[TaskReport], plots: Path, max_metrics: int = 3) -> list[tuple[str, str]]:
    """One PNG per metric (the most common ``max_metrics``): every task's curve, coloured by state.

    Returns [(metric name, file name)].
    """
    by_metric: dict[str, list[TaskReport]] = {}
    for task in tasks:
        if task.values:
            by_metric.setdefault(task.metric or "metric", []).append(task)
    names = sorted(by_metric, key=lambda m: -len(by_metric[m]))[:max_metrics]
    plots.mkdir(parents=True, exist_ok=True)
    written = []
    for k, name in enumerate(names, 1):
        fig = overview_figure(name, by_metric[name])
        filename = f"overview-{k}.png"
        try:
            fig.savefig(plots / filename, format="png")
        except (ValueError, OverflowError):  # values matplotlib cannot place: no overview of this metric
            continue
        written.append((name, filename))
    return written


def draw_goodput(breakdown: Breakdown, plots: Path) -> str | None:
    """``goodput.png``: the badput parts (seconds), largest first, as horizontal bars; None when
    there is no badput to draw or matplotlib cannot place the values."""
    bad = breakdown.badput()
    if not bad:
        return None
    fig = _figure(6.0, 0.5 + 0.3 * len(bad), dpi=OVERVIEW_DPI)
    ax = fig.add_subplot()
    names = list(bad)[::-1]
    ax.barh(names, [bad[n] for n in names], color="#c0504d")
    ax.set_xlabel("seconds (all tasks)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    plots.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(plots / "goodput.png", format="png")
    except (ValueError, OverflowError):
        return None
    return "goodput.png"
