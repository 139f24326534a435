"""The reading subcommands of ``candle-restart`` (and ``run``, ``demo``): each takes the parsed
arguments and returns the exit code.  Bad input raises a `CkptError` (one line, exit 2, printed
by `candle_restart.cli.main`).  A task that cannot be read (``extra.error`` of its status) is
shown with the others, said in one line on stderr, and makes the exit code 1 (`errors`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from candle_restart.ckpt import CkptError, CkptLayout, find_restart, verify_checkpoint
from candle_restart.coordinator.backend import Backend
from candle_restart.coordinator.policy import Policy
from candle_restart.coordinator.report import summary, table, terminal_width, varied_keys
from candle_restart.coordinator.states import TaskStatus
from candle_restart.records.jsontypes import JsonObject, JsonValue
from candle_restart.records.localtier import describe_local_tier, progress_of
from candle_restart.report.goodfacts import task_breakdown
from candle_restart.report.goodput import Breakdown, total
from candle_restart.runtime.preempt import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_IO_ERROR
from candle_restart.task.taskdir import TASK_FILE
from candle_restart.views.output import print_json
from candle_restart.views.where import check_run_root


@dataclass
class StatusDoc:
    """``status --json``: each task's classification with its varied parameters, and the counts."""

    statuses: list[TaskStatus]
    root: Path | None = None  # the run root: each task's goodput is read below it

    def to_json(self) -> JsonObject:
        keys = varied_keys([s.params for s in self.statuses])
        tasks: list[JsonValue] = []
        parts: list[Breakdown] = []
        for s in self.statuses:
            record = s.to_json()
            record["params"] = {k: s.params[k] for k in keys if k in s.params}
            if self.root is not None and s.extra.error is None:
                parts.append(task_breakdown(self.root / s.task_id))
                record["goodput"] = parts[-1].to_json()
            tasks.append(record)
        doc: JsonObject = {"tasks": tasks, "varied": [k for k in keys], "summary": summary(self.statuses)}
        if self.root is not None:
            doc["goodput"] = total(parts).to_json()
        return doc


def errors(statuses: list[TaskStatus]) -> int:
    """Say each task that could not be read in one line on stderr; the exit code of the pass."""
    lines = [s.extra.error for s in statuses if s.extra.error is not None]
    for line in lines:
        print(f"candle-restart: {line}", file=sys.stderr)
    return EXIT_IO_ERROR if lines else EXIT_COMPLETED


def cmd_status(args: argparse.Namespace) -> int:
    from candle_restart.coordinator import LocalBackend, scan

    if getattr(args, "hosts", False):
        from candle_restart.views.hosts import show_hosts

        return show_hosts(args.run_root, args.json)
    root = check_run_root(args.run_root)
    statuses = scan(root, {"local": LocalBackend()})
    if args.json:
        print_json(StatusDoc(statuses, Path(root)))
    else:
        print(table(statuses, width=terminal_width()))
    return errors(statuses)


def cmd_results(args: argparse.Namespace) -> int:
    from candle_restart.views.results import best_line, results, text, to_csv

    res = results(check_run_root(args.run_root), args.sort)
    if args.format == "json":
        print_json(res)
    elif args.format == "csv":
        sys.stdout.write(to_csv(res))
        print(best_line(res), file=sys.stderr)  # stdout stays a CSV that any reader loads
    else:
        print(text(res, terminal_width()))
    return errors(res.statuses)


def cmd_report(args: argparse.Namespace) -> int:
    from candle_restart.report import write_report

    written = write_report(check_run_root(args.run_root), args.output, plots=not args.no_plots)
    problems = [p for t in written.tasks for p in t.problems]
    for problem in problems[:10]:
        print(f"warning: {problem}", file=sys.stderr)
    if len(problems) > 10:
        print(f"warning: and {len(problems) - 10} more problems; see the report", file=sys.stderr)
    if written.note:
        print(f"no plots: {written.note}")
    print(
        f"report: {written.index} ({written.summary.tasks} tasks, {written.plots} plots, "
        f"{written.seconds:.1f} s)"
    )
    return EXIT_IO_ERROR if any(t.status.extra.error for t in written.tasks) else EXIT_COMPLETED


def ckpt_dir_of(path: str) -> Path:
    """The checkpoint directory to list: ``path``, or ``path/ckpts`` when ``path`` is a task
    directory (or holds a ``ckpts/`` and no ``epochs/`` of its own)."""
    given = Path(path)
    inner = given / "ckpts"
    if inner.is_dir() and ((given / TASK_FILE).exists() or not (given / "epochs").is_dir()):
        return inner
    return given


def cmd_ckpt(args: argparse.Namespace) -> int:
    directory = ckpt_dir_of(args.ckpt_dir)
    layout = CkptLayout.at(directory)
    if not layout.root.is_dir():
        print(f"{layout.root}: not a directory", file=sys.stderr)
        return EXIT_BAD_INPUT
    if directory != Path(args.ckpt_dir):
        print(f"checkpoints of {directory}")
    last = layout.linked_epoch(layout.last)
    best = layout.linked_epoch(layout.best)
    for epoch in layout.list_epochs():
        marks = ",".join(n for n, e in (("last", last), ("best", best)) if e == epoch)
        try:
            info = verify_checkpoint(layout.epoch_dir(epoch), args.checksums)
            status = f"ok   best_metric_last={info.best_metric_last} complete={info.complete}"
        except CkptError as exc:
            status = f"BAD  {exc}"
        print(f"{epoch:>5} {marks:<9} {status}")
    found = find_restart(layout, args.checksums, lambda msg: print("  " + msg))
    none = "nothing (fresh start)" if layout.list_epochs() else f"nothing: {layout.root} holds no epochs/"
    print(f"restart would load: {found.path if found else none}")
    newest = None if found is None else progress_of(found.epoch, found.info)
    node_local = describe_local_tier(layout.root, newest)  # two tiers (candle_restart.ckpt.drain)
    if node_local is not None:
        print(node_local)
    return 0


def request_retries(run_root: str, backend: Backend, policy: Policy, only: list[str], dry_run: bool) -> bool:
    """``resume --retry-failed [TASK...]``: journal ``retry_requested`` for the failed and given-up
    tasks (of ``only``, when named) and print a line per task (per named task, a task that could
    not be read or written, or a count).  True when some task could not be."""
    from candle_restart.coordinator.retry import request_retry

    answers = request_retry(
        run_root, {backend.name: backend}, policy, only or None, dry_run=dry_run, log=print
    )
    for a in answers:
        if a.requested or a.error or only:
            print(a.line, flush=True)
    asked = sum(a.requested for a in answers)
    left = len(answers) - asked
    verb = "would be retried" if dry_run else "retry requested"
    print(f"{verb}: {asked} task(s); {left} left alone (not failed or given up)", flush=True)
    return any(a.error for a in answers)


def cmd_demo(args: argparse.Namespace) -> int:
    from candle_restart.examples.demo import demo

    return demo(Path(args.dir).resolve())


def cmd_run(args: argparse.Namespace) -> int:
    from candle_restart.task import run_task

    return run_task(args.task_dir)
