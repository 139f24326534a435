"""``candle-restart results``: one row per task (parameters, state, metric, result) and the best task.

What Ray Tune's ``ResultGrid.get_dataframe``/``get_best_result`` and Optuna's
``trials_dataframe`` give, from what is on disk:

* the parameters that differ between tasks (`varied_keys`; every parameter is in ``task.json``);
* the checkpointed metric: its name and mode, the best value and its epoch, and the final value
  (``state.json``'s ``metric`` when the runner recorded one; else the report's readers: the
  newest checkpoint's ``ckpt-info.json`` and the values ``ckpts/events.jsonl`` gives per epoch);
* what the training function returned (``state.json``'s ``result``).

Sorting (`--sort NAME[:min|:max]`): NAME is the checkpointed metric (its best value), ``final``,
a key of a dict result (its number, or a list's last number) or a parameter.  The mode is the
checkpoint's ``best_mode`` for its metric, else ``max`` for names that look like a score
(acc, auc, f1, precision, recall, r2, score, iou, dice) and ``min`` otherwise.  Tasks without a
value sort last; the best task is the first with one.  ``--sort trial`` keeps the rows in task-id
order, which for a search's trials (``<name>-tNNNN-...``) is the order they were asked; the
best task is still the checkpointed metric's.

Contract: reads only; every value written is strict JSON (`candle_restart.views.output`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from candle_restart.coordinator.report import cell, fit, summary, varied_keys
from candle_restart.coordinator.states import TaskStatus
from candle_restart.records.jsontypes import JsonObject, JsonValue
from candle_restart.report.collect import TaskReport, collect
from candle_restart.report.lineage import Lineage, lineage

SCORE = re.compile(r"acc|auc|f1|precision|recall|r2|score|iou|dice", re.IGNORECASE)


@dataclass
class TaskRow:
    """One task of the results (``params``: the varied ones)."""

    task_id: str
    state: str
    params: JsonObject
    metric: str | None
    mode: str | None
    best: float | None
    best_epoch: int | None
    final: float | None
    final_epoch: int | None
    attempts: int
    result: JsonValue
    reason: str
    goodput: float | None = None  # productive, kept training over the task's wall time
    queue_wait: float | None = None  # the scheduler's queue wait, seconds (None: it did not say)
    halt_unused: float | None = None  # allocation left after halts before the walltime, seconds
    lineage: Lineage | None = None  # a warm-started task: the checkpoint it began from

    def to_json(self) -> JsonObject:
        return {
            "task_id": self.task_id,
            "state": self.state,
            "params": self.params,
            "metric": self.metric,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "final": self.final,
            "final_epoch": self.final_epoch,
            "attempts": self.attempts,
            "result": self.result,
            "reason": self.reason,
            "goodput": self.goodput,
            "queue_wait_seconds": self.queue_wait,
            "halt_unused_seconds": self.halt_unused,
            "lineage": None if self.lineage is None else self.lineage.to_json(),
        }


@dataclass
class Results:
    """The rows, sorted by ``sort`` in ``mode``; ``best`` the first row with a value (or None)."""

    rows: list[TaskRow]
    varied: list[str]
    sort: str | None
    mode: str | None
    best: TaskRow | None
    summary: str
    values: dict[str, float] = field(default_factory=dict)  # task id -> the sort value
    statuses: list[TaskStatus] = field(default_factory=list)  # each task's classification

    def to_json(self) -> JsonObject:
        return {
            "sort": self.sort,
            "mode": self.mode,
            "best": self.best.task_id if self.best else None,
            "varied": [k for k in self.varied],
            "summary": self.summary,
            "tasks": [r.to_json() for r in self.rows],
        }


def _number(value: JsonValue) -> float | None:
    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _row(t: TaskReport, keys: list[str]) -> TaskRow:
    s, recorded = t.status, t.status.metric
    final_epoch = max(t.values) if t.values else None
    final = _number(recorded.final) if recorded else None
    if final is None and final_epoch is not None:
        final = t.values[final_epoch]
    best = _number(recorded.best) if recorded else None
    best_epoch = recorded.best_epoch if recorded else None
    metric = recorded.name if recorded else None
    mode = recorded.mode if recorded else None
    return TaskRow(
        task_id=s.task_id,
        state=s.state,
        params={k: s.params[k] for k in keys if k in s.params},
        metric=metric or t.metric,
        mode=mode or t.mode,
        best=best if best is not None else t.best_value,
        best_epoch=best_epoch if best_epoch is not None else t.best_epoch,
        final=final,
        final_epoch=final_epoch if final_epoch is not None else s.epoch,
        attempts=s.attempts,
        result=s.result,
        reason=s.reason,
        goodput=None if t.goodput is None or t.goodput.goodput is None else round(t.goodput.goodput, 4),
        queue_wait=None if t.goodput is None or t.goodput.queue_wait is None else round(t.goodput.queue_wait, 3),
        halt_unused=None if t.goodput is None or t.goodput.halt_unused is None else round(t.goodput.halt_unused, 3),
    )


def _value(row: TaskRow, name: str) -> float | None:
    if name == row.metric or name == "best":
        return row.best
    if name == "final":
        return row.final
    if isinstance(row.result, dict) and name in row.result:
        return _number(row.result[name])
    return _number(row.params.get(name))


def results(run_root: str | os.PathLike[str], sort: str | None = None) -> Results:
    """Every task of ``run_root`` as a `TaskRow`, sorted (see the module docstring)."""
    tasks = collect(run_root)
    keys = varied_keys([t.status.params for t in tasks])
    rows = [_row(t, keys) for t in tasks]
    for row in rows:
        row.lineage = lineage(Path(run_root) / row.task_id)
    name, _, mode = (sort or "").partition(":")
    ask_order = name == "trial"  # a search's trials in the order they were asked (their ids' order)
    if ask_order:
        name = ""
    if not name:
        metrics = Counter(r.metric for r in rows if r.metric)
        name = metrics.most_common(1)[0][0] if metrics else ""
    if mode not in ("min", "max"):
        modes = Counter(r.mode for r in rows if r.metric == name and r.mode)
        mode = modes.most_common(1)[0][0] if modes else ("max" if SCORE.search(name) else "min")
    values = {r.task_id: v for r in rows if name and (v := _value(r, name)) is not None}
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (r.task_id not in values, sign * values.get(r.task_id, 0.0), r.task_id))
    best = rows[0] if rows and rows[0].task_id in values else None
    if ask_order:
        rows.sort(key=lambda r: r.task_id)
    statuses = [t.status for t in tasks]
    return Results(rows, keys, name or None, mode if name else None, best, summary(statuses), values, statuses)


def best_line(res: Results) -> str:
    """``best: TASK (NAME=V, epoch E; params)``, or why there is none."""
    if res.best is None:
        return f"best: none (no task has a value of {res.sort})" if res.sort else "best: none (no metric)"
    b = res.best
    at = f" at epoch {b.best_epoch}" if res.sort in (b.metric, "best") and b.best_epoch else ""
    params = "".join(f"; {k}={cell(v, 40)}" for k, v in b.params.items())
    return f"best: {b.task_id} ({res.sort}={res.values[b.task_id]:.6g}{at}, {res.mode}; {b.state}{params})"


def text(res: Results, width: int | None) -> str:
    """The table: task, the varied parameters, state, best and its epoch, final, the sort value
    (when it is a key of the results), attempts, goodput, result; then the best task and the counts."""
    metrics = Counter(r.metric for r in res.rows if r.metric)
    metric = metrics.most_common(1)[0][0] if metrics else None
    extra = res.sort not in (None, metric, "best", "final", *res.varied)
    header = ("task", *res.varied, "state", f"best {metric}" if metric else "best", "epoch", "final")
    header += (*([str(res.sort)] if extra else []), "attempts", "goodput", "result")
    started = any(r.lineage is not None for r in res.rows)  # warm-started tasks: where each began
    header += ("started from",) if started else ()

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.6g}"

    rows = []
    for r in res.rows:
        rows.append(
            (
                r.task_id,
                *(cell(r.params.get(k)) for k in res.varied),
                r.state,
                number(r.best),
                "-" if r.best_epoch is None else str(r.best_epoch),
                number(r.final),
                *([number(res.values.get(r.task_id))] if extra else []),
                str(r.attempts),
                "-" if r.goodput is None else f"{100 * r.goodput:.0f}%",
                "-" if r.result is None else json.dumps(r.result, separators=(",", ":")),
                *(("-" if r.lineage is None else r.lineage.text,) if started else ()),
            )
        )
    widest = sorted(res.varied, key=lambda k: -max(len(r[1 + res.varied.index(k)]) for r in [header, *rows]))
    drop = tuple(c for c in ("goodput", "attempts", "final", *widest) if c != res.sort)
    return "\n".join([*fit(header, rows, width, drop), best_line(res), res.summary])


def to_csv(res: Results) -> str:
    """CSV with a header: task_id, state, params.K..., metric, mode, best, best_epoch, final,
    final_epoch, attempts, goodput, result.K (the scalar entries of dict results), result (as JSON);
    then, when a task was warm-started, parent and parent_epoch (the checkpoint it began from; the
    epoch is empty until the copy is made)."""
    result_keys: dict[str, None] = {}
    for r in res.rows:
        if isinstance(r.result, dict):
            result_keys.update({k: None for k, v in r.result.items() if not isinstance(v, (dict, list))})
    head = ["task_id", "state", *(f"params.{k}" for k in res.varied), "metric", "mode", "best", "best_epoch"]
    head += ["final", "final_epoch", "attempts", "goodput", *(f"result.{k}" for k in result_keys), "result"]
    started = any(r.lineage is not None for r in res.rows)  # the lineage of a leave-out tree, a PBT run
    head += ["parent", "parent_epoch"] if started else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)

    def plain(v: JsonValue) -> str | int | float:
        return "" if v is None else v if isinstance(v, (str, int, float)) else json.dumps(v)

    for r in res.rows:
        extra = r.result if isinstance(r.result, dict) else {}
        writer.writerow(
            [
                r.task_id,
                r.state,
                *(plain(r.params.get(k)) for k in res.varied),
                plain(r.metric),
                plain(r.mode),
            ]
            + [plain(r.best), plain(r.best_epoch), plain(r.final), plain(r.final_epoch), r.attempts]
            + [plain(r.goodput)]
            + [plain(extra.get(k)) for k in result_keys]
            + ["" if r.result is None else json.dumps(r.result, separators=(",", ":"))]
            + (_lineage_cells(r.lineage) if started else [])
        )
    return out.getvalue()


def _lineage_cells(found: Lineage | None) -> list[str | int | float]:
    """The ``parent`` and ``parent_epoch`` cells of a row."""
    if found is None:
        return ["", ""]
    epoch = None if found.origin is None else found.origin.get("epoch")
    return [found.parent, epoch if isinstance(epoch, int) else ""]
