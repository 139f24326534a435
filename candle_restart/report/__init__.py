"""``candle-restart report RUN_ROOT [-o DIR]``: a static page that shows a whole run root at a glance.

* `collect` (``collect.py``): per task, its status, attempts, kept checkpoints, metric and restarts;
  ``epochlog.py`` reads ``ckpts/events.jsonl`` into epochs and restarts (``epochlog_legacy.py``
  parses ``ckpts/ckpt.log`` instead for a task written before events existed).
* ``plots.py``: the metric figures (matplotlib, the optional ``report`` extra).
* ``timeline.py``: each task's attempts as an inline SVG bar and a table.
* ``page.py``: the HTML page.
* `write_report`: all of it, into ``index.html`` and ``plots/`` of the output directory.

Contract: the run root is only read (through the coordinator's and the task directory's own
readers); files are written only into the output directory, by default ``RUN_ROOT/.report/``
(a dot directory, like ``.parsl/`` and ``.slurm/``, so no scan takes it for a task).  An output
directory that is, or lies inside, a task directory is refused with one line (`ReportError`).
Without matplotlib the page is still written, without plots, and says why.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.report.collect import Summary, TaskReport, collect, summarize
from candle_restart.runtime.fsio import atomic_write_bytes
from candle_restart.task.taskdir import TASK_FILE

DEFAULT_DIR = ".report"


class ReportError(CkptError):
    """The report cannot be written where asked."""


@dataclass
class Written:
    """What `write_report` did."""

    index: Path
    tasks: list[TaskReport]
    summary: Summary
    plots: int  # task figures drawn
    note: str | None  # why there are no plots, when there are none
    seconds: float


def output_dir(run_root: Path, out: str | os.PathLike[str] | None) -> Path:
    """The directory to write into; ReportError if it is, or lies inside, a task directory."""
    target = Path(os.path.abspath(out if out is not None else run_root / DEFAULT_DIR))
    for directory in (target, *target.parents):
        if (directory / TASK_FILE).exists():
            raise ReportError(
                str(target), None, f"is inside the task directory {directory}; choose another -o"
            )
    if target == Path(os.path.abspath(run_root)):
        raise ReportError(str(target), None, "is the run root itself; choose another -o")
    return target


def write_report(
    run_root: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    plots: bool = True,
    workers: int | None = None,
) -> Written:
    """Collect every task under ``run_root`` and write the page (see the module contract)."""
    from candle_restart.report import page
    from candle_restart.report import plots as figures

    started = time.perf_counter()
    root = Path(run_root)
    tasks = collect(root)  # raises RunRootError (one line) for a missing run root
    target = output_dir(root, out)
    try:
        target.mkdir(parents=True, exist_ok=True)
        figures.clear(target / "plots")
    except OSError as exc:
        raise ReportError(
            str(target), None, f"cannot be written ({exc.strerror or exc}); pass -o DIR"
        ) from None
    note = None if plots else "plots were turned off (--no-plots)"
    note = note or figures.missing()
    drawn: dict[int, str] = {}
    overview: list[tuple[str, str]] = []
    summary = summarize(tasks)
    goodput_plot = None
    if note is None:
        try:
            drawn = figures.draw_tasks(tasks, target / "plots", workers)
            overview = figures.draw_overview(tasks, target / "plots")
            if summary.goodput is not None:
                goodput_plot = figures.draw_goodput(summary.goodput, target / "plots")
        except OSError as exc:
            raise ReportError(
                str(target / "plots"), None, f"cannot be written: {exc.strerror or exc}"
            ) from None
    from candle_restart.report.searchhistory import section

    html = page.render(
        str(root), tasks, summary, drawn, overview, note, goodput_plot=goodput_plot, search=section(root, tasks)
    )
    index = target / "index.html"
    try:
        atomic_write_bytes(index, html.encode())
    except OSError as exc:
        raise ReportError(str(index), None, f"cannot be written: {exc.strerror or exc}") from None
    return Written(index, tasks, summary, len(drawn), note, time.perf_counter() - started)


__all__ = ["DEFAULT_DIR", "ReportError", "Written", "collect", "summarize", "write_report"]
