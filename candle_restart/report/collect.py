"""Gathering what the report shows about each task, from the readers that already exist.

Per task: its classification (`candle_restart.coordinator.scan`, the same as
``candle-restart status``), its attempts (the journal's `JournalEvent` records, `TaskDir.events`),
the ``ckpt-info.json`` of every kept checkpoint (`read_ckpt_info`) and the epochs of
its ``ckpts/events.jsonl`` (``ckpts/ckpt.log`` for a task written before events existed;
`candle_restart.report.epochlog`).

Where the metric comes from: the events' (or log's) per-epoch values when there are any;
otherwise each kept checkpoint that was the best when written (its
``best_epoch`` is its own epoch), whose ``best_metric_last`` is that epoch's
value.  Restarts come from the events' (or log's) sessions, or without either from the
kept checkpoints whose writer (host, pid) differs from the previous one's.

Contract: never writes; never raises for one task's bad files (an unreadable
or malformed ``state.json``, ``ckpt-info.json``, ``events.jsonl`` or ``ckpt.log`` becomes a line
in that task's ``problems`` naming the file); a run root that is not a
directory raises `RunRootError` (one line).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from candle_restart.ckpt import CkptInfo, CkptLayout, read_ckpt_info
from candle_restart.ckpt.info import finite_or_none
from candle_restart.ckpt.layout import INFO_FILE
from candle_restart.coordinator import STATES, LocalBackend, TaskStatus, scan
from candle_restart.errors import CorruptCheckpointError
from candle_restart.records.journal import EXIT, RUNNER_LOST, STALE_EXIT, START, JournalEvent
from candle_restart.report.epochlog import read_epoch_log
from candle_restart.report.goodfacts import task_breakdown
from candle_restart.report.goodput import Breakdown, total
from candle_restart.report.sessions import EpochLog
from candle_restart.task.taskdir import TaskDir

STUCK_RESUMES = 2  # this many restarts in a row from the same epoch: the task makes no progress


@dataclass
class Attempt:
    """One run of the task runner, from its ``start`` event to its ``exit`` (or what ended it)."""

    number: int
    start: datetime | None
    end: datetime | None = None
    outcome: str = "lost"  # completed, preempted, failed, bad_input, lost, running, stood down
    exit_code: int | None = None
    where: str = ""
    reason: str = ""


@dataclass
class Resume:
    """Training resumed with ``epoch`` epochs done (``mid_epoch``: inside the next one)."""

    epoch: int
    mid_epoch: bool = False
    source: str = "events.jsonl"  # or "ckpt.log" (a task from before events), or "checkpoint writers"


@dataclass
class TaskReport:
    """Everything the page shows about one task; ``index`` names its anchor and plot file."""

    index: int
    status: TaskStatus
    metric: str | None = None
    mode: str | None = None  # "min" or "max"
    values: dict[int, float] = field(default_factory=dict)  # the metric at each epoch end
    kept: dict[int, float | None] = field(default_factory=dict)  # kept checkpoint -> running best
    best_epoch: int | None = None
    best_value: float | None = None
    resumes: list[Resume] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    epochs_trained: int = 0
    epochs_redone: int | None = None  # None: no events.jsonl or ckpt.log to count from
    checkpoints_seen: int = 0  # directories in ckpts/epochs/, readable or not
    problems: list[str] = field(default_factory=list)
    stuck: str | None = None
    goodput: Breakdown | None = None  # where its wall time went (`candle_restart.report.goodput`)

    @property
    def task_id(self) -> str:
        return self.status.task_id


@dataclass
class Summary:
    """The counts at the top of the page."""

    tasks: int
    by_state: dict[str, int]
    epochs_trained: int
    epochs_redone: int
    without_log: int  # tasks with checkpoints but no events or log: their redone epochs are not counted
    preemptions: int
    failures: int
    attempts: int
    restarts: int
    stuck: int
    goodput: Breakdown | None = None  # every task's parts summed (task-seconds)


def parse_time(text: Any) -> datetime | None:
    """A journal time (ISO 8601 with offset) in this machine's local time; None if absent or garbled."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).astimezone()
    except ValueError:
        return None


def _where(event: JournalEvent) -> str:
    host = event.host or "?"
    if event.array_job_id and event.array_task_id is not None:
        return f"job {event.array_job_id}_{event.array_task_id} on {host}"
    if event.job_id:
        return f"job {event.job_id} on {host}"
    return f"pid {'?' if event.pid is None else event.pid} on {host}"


def attempts_of(journal: list[JournalEvent], running: bool) -> list[Attempt]:
    """The attempts in a task's journal, in order (``running``: the task is classified running)."""
    attempts: list[Attempt] = []
    for event in journal:
        kind, number = event.kind, event.attempt
        if kind == START:
            attempts.append(Attempt(number or 0, parse_time(event.time), where=_where(event)))
        elif kind in (EXIT, STALE_EXIT):
            for a in reversed(attempts):
                if a.number == number and a.end is None:
                    a.end, a.exit_code = parse_time(event.time), event.exit_code
                    a.outcome = (event.status or "?") if kind == EXIT else "stood down"
                    a.reason = (event.reason or "") if kind == EXIT else "a newer submission took over"
                    break
        elif kind == RUNNER_LOST:
            for a in reversed(attempts):
                if a.end is None:
                    a.end, a.outcome = parse_time(event.time), "lost"
                    a.reason = event.reason or "the runner died without recording an exit"
                    break
    for a in attempts:
        if a.end is None and a.outcome == "lost" and not a.reason:
            a.reason = "no exit recorded"
    if running and attempts and attempts[-1].end is None:
        attempts[-1].outcome, attempts[-1].reason = "running", ""
    return attempts


def _checkpoints(report: TaskReport, layout: CkptLayout) -> list[tuple[int, CkptInfo]]:
    """Read every kept checkpoint's ``ckpt-info.json``; bad ones become problems."""
    infos: list[tuple[int, CkptInfo]] = []
    for epoch in layout.list_epochs():
        try:
            infos.append((epoch, read_ckpt_info(layout.epoch_dir(epoch) / INFO_FILE)))
        except CorruptCheckpointError as exc:
            report.problems.append(str(exc))
    for epoch, info in infos:
        value = finite_or_none(info.best_metric_last)
        report.kept[epoch] = value
        report.metric = report.metric or info.save_best_metric or None
        if info.best_mode in ("min", "max"):
            report.mode = info.best_mode
        if info.position is None and info.best_epoch == epoch and value is not None:
            report.values.setdefault(epoch, value)  # it was the best when written: its own value
    if infos:
        newest = infos[-1][1]
        best_epoch = newest.best_epoch
        report.best_epoch = best_epoch if best_epoch is not None and best_epoch > 0 else None
        report.best_value = finite_or_none(newest.best_metric_last)
    return infos


def _writer_restarts(infos: list[tuple[int, CkptInfo]]) -> list[Resume]:
    """Without a log: where a kept checkpoint's writer differs from the previous kept one's."""
    resumes, previous = [], None
    for epoch, info in infos:
        writer = info.writer
        who = (writer.get("host"), writer.get("pid")) if writer is not None else None
        if previous is not None and who is not None and who != previous[1]:
            resumes.append(Resume(previous[0], source="checkpoint writers"))
        if info.position is None:
            previous = (epoch, who)
    return resumes


def _from_log(report: TaskReport, log: EpochLog) -> None:
    report.metric = report.metric or log.metric
    for epoch, value in log.values().items():
        report.values.setdefault(epoch, value)  # a checkpoint's exact value wins over the log's 6 decimals
    report.epochs_trained, report.epochs_redone = log.trained, log.redone
    trained_before = False
    for session in log.sessions:
        if session.resumed_from is not None:
            report.resumes.append(Resume(session.resumed_from, session.position is not None, log.source))
        elif trained_before and session.epoch_ends:
            report.resumes.append(Resume(0, source=log.source))  # started over from scratch
        trained_before = trained_before or bool(session.epoch_ends)
    last = report.resumes[-STUCK_RESUMES:]
    if (
        report.status.state != "completed"
        and len(last) == STUCK_RESUMES
        and len({r.epoch for r in last}) == 1
    ):
        report.stuck = f"its last {STUCK_RESUMES} restarts both resumed from epoch {last[0].epoch}"


def collect_task(index: int, status: TaskStatus, task: TaskDir) -> TaskReport:
    """One task's report (see the module contract)."""
    report = TaskReport(index, status)
    _, state_problem = task.load_state()
    if state_problem and state_problem != "no state.json":
        report.problems.append(state_problem)
    report.attempts = attempts_of(task.events(), status.state == "running")
    report.goodput = task_breakdown(task.path)
    layout = CkptLayout.at(task.ckpts)
    report.checkpoints_seen = len(layout.list_epochs())
    infos = _checkpoints(report, layout)
    try:
        log = read_epoch_log(layout.root)
    except OSError as exc:
        report.problems.append(f"{layout.log}: cannot be read: {exc.strerror or exc}")
        log = None
    if log is not None:
        report.problems.extend(log.problems)
    if log is not None and log.sessions:
        _from_log(report, log)
    else:
        report.resumes = _writer_restarts(infos)
        report.epochs_trained = status.epoch or 0
    if report.best_epoch is None and report.values:
        pick = max if report.mode == "max" else min
        report.best_epoch = pick(report.values, key=lambda e: report.values[e])
        report.best_value = report.values[report.best_epoch]
    return report


def collect(run_root: str | os.PathLike[str]) -> list[TaskReport]:
    """Every task under ``run_root``, in task-id order (the order of ``candle-restart status``)."""
    statuses = scan(run_root, {"local": LocalBackend()})
    root = Path(run_root)
    return [_collect_one(i, s, TaskDir(root / s.task_id)) for i, s in enumerate(statuses, 1)]


def _collect_one(index: int, status: TaskStatus, task: TaskDir) -> TaskReport:
    """`collect_task`, with values of a shape no reader foresaw, or a file that cannot be read,
    made one problem of this task; a task its classification could not read is not read again."""
    if status.extra.error is not None:
        return TaskReport(index, status, problems=[status.extra.error])
    try:
        return collect_task(index, status, task)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        problem = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return TaskReport(index, status, problems=[f"{task.path}: unreadable: {problem}"])
    except OSError as exc:
        return TaskReport(index, status, problems=[f"{exc.filename or task.path}: cannot be read: {exc.strerror or exc}"])


def summarize(tasks: list[TaskReport]) -> Summary:
    counts = Counter(t.status.state for t in tasks)
    return Summary(
        tasks=len(tasks),
        by_state={state: counts[state] for state in STATES if counts[state]},
        epochs_trained=sum(t.epochs_trained for t in tasks),
        epochs_redone=sum(t.epochs_redone or 0 for t in tasks),
        without_log=sum(t.epochs_redone is None and t.checkpoints_seen > 0 for t in tasks),
        preemptions=sum(t.status.preemptions for t in tasks),
        failures=sum(t.status.failures for t in tasks),
        attempts=sum(t.status.attempts for t in tasks),
        restarts=sum(len(t.resumes) for t in tasks),
        stuck=sum(t.stuck is not None for t in tasks),
        goodput=total(t.goodput for t in tasks if t.goodput is not None),
    )
