"""The ``candle-restart`` command.

Subcommands:

* ``demo [--dir DIR]``: train a small example, kill it, resume it (``make demo``).
* ``run TASK_DIR``: run one task; exit 0 completed, 75 preempted (resume me), 1 failed, 2 bad input,
  3 not run (another runner of the task is alive).
* ``status RUN_ROOT [--json]``: every task's state, epoch, best metric, attempts, ..., and a summary.
* ``resume RUN_ROOT [--dry-run] [--watch SECONDS]``: resubmit what the policy says, exactly once.
* ``sweep run CONFIG`` / ``sweep status CONFIG``: a YAML sweep through Parsl, to the end.
* ``slurm submit CONFIG``: the sweep's tasks as one Slurm job array (then ``resume --backend slurm``).
* ``report RUN_ROOT [-o DIR] [--no-plots]``: a static HTML page of the run root (summary, metric
  curves, restarts, attempts, the status table), by default in ``RUN_ROOT/.report/index.html``.
* ``ckpt CKPT_DIR [--checksums]``: list a checkpoint directory's checkpoints, verify each,
  and say which one a restart would load.

Bad input exits 2 with one line naming the file, key and problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from candle_restart.ckpt import CkptError, CkptLayout, find_restart, verify_checkpoint


def cmd_ckpt(args: argparse.Namespace) -> int:
    layout = CkptLayout.at(args.ckpt_dir)
    if not layout.root.is_dir():
        print(f"{layout.root}: not a directory", file=sys.stderr)
        return 2
    last = layout.linked_epoch(layout.last)
    best = layout.linked_epoch(layout.best)
    for epoch in layout.list_epochs():
        marks = ",".join(n for n, e in (("last", last), ("best", best)) if e == epoch)
        try:
            info = verify_checkpoint(layout.epoch_dir(epoch), args.checksums)
            status = f"ok   best_metric_last={info.get('best_metric_last')} complete={info.get('complete')}"
        except CkptError as exc:
            status = f"BAD  {exc}"
        print(f"{epoch:>5} {marks:<9} {status}")
    found = find_restart(layout, args.checksums, lambda msg: print("  " + msg))
    print(f"restart would load: {found.path if found else 'nothing (fresh start)'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from candle_restart.examples.demo import demo

    return demo(Path(args.dir).resolve())


def cmd_run(args: argparse.Namespace) -> int:
    from candle_restart.task import run_task

    return run_task(args.task_dir)


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from candle_restart.ckpt.jsonio import finite
    from candle_restart.coordinator import LocalBackend, scan
    from candle_restart.coordinator.report import summary, table

    statuses = scan(args.run_root, {"local": LocalBackend()})
    if args.json:
        record = finite({"tasks": [s.to_json() for s in statuses], "summary": summary(statuses)})
        print(json.dumps(record, indent=1, allow_nan=False))
    else:
        print(table(statuses))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from candle_restart.report import write_report

    written = write_report(args.run_root, args.output, plots=not args.no_plots)
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
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    import time

    from candle_restart.coordinator import Backend, LocalBackend, resume
    from candle_restart.coordinator.report import summary
    from candle_restart.sweep.run import run_root_policy

    policy = run_root_policy(  # flags given > the sweep's recorded restart: policy > defaults
        Path(args.run_root),
        log=lambda m: print(m, flush=True),
        max_failures=args.max_failures,
        max_preemptions=args.max_preemptions,
        backoff_seconds=args.backoff,
        restart_corrupt=args.restart_corrupt,
        include_cancelled=args.include_cancelled,
    )
    backend: Backend = LocalBackend()
    if args.backend == "slurm":
        from candle_restart.slurm import SlurmBackend, read_options

        backend = SlurmBackend(read_options(Path(args.run_root)))
    while True:
        outcomes = resume(
            args.run_root, backend, policy, dry_run=args.dry_run, log=lambda m: print(m, flush=True)
        )
        for o in outcomes:
            if args.dry_run or o.decision.action not in ("none",):
                print(
                    f"{o.status.task_id}: {o.status.state} -> {o.decision.action}: {o.decision.reason}",
                    flush=True,
                )
        print(summary([o.status for o in outcomes]), flush=True)
        if not args.watch or all(o.final for o in outcomes):
            return 0
        time.sleep(args.watch)


def cmd_slurm(args: argparse.Namespace) -> int:
    from candle_restart.coordinator import resume
    from candle_restart.coordinator.report import summary
    from candle_restart.slurm import SlurmBackend, require_slurm
    from candle_restart.sweep import expand, parse_sweep
    from candle_restart.sweep.run import policy_of

    sweep = parse_sweep(args.config)
    require_slurm(str(sweep.source), None)  # before anything is written
    expansion = expand(sweep)
    options = {**sweep.executor.get("slurm", {}), **({"requeue": False} if args.no_requeue else {})}
    ids = {t.task_id for t in expansion.tasks}
    outcomes = resume(
        sweep.run_root, SlurmBackend(options), policy_of(sweep), log=lambda m: print(m, flush=True), only=ids
    )
    print(summary([o.status for o in outcomes]))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from candle_restart.sweep import parse_sweep

    sweep = parse_sweep(args.config)
    if args.sweep_command == "status":
        from candle_restart.sweep.run import sweep_status

        print(sweep_status(sweep))
        return 0
    from candle_restart.sweep.run import EXIT_INTERRUPTED, run_sweep

    try:  # once tasks run, run_sweep handles Ctrl-C itself (checkpoint, stop, say how to go on)
        return run_sweep(sweep, log=lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        print(f"interrupted before any task started; run `candle-restart sweep run {args.config}` again")
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="candle-restart", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small example, kill it, resume it")
    p.add_argument("--dir", default="demo-run", help="work directory (wiped first)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("run", help="run one task directory (exit 0/75/1/2)")
    p.add_argument("task_dir")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("status", help="classify every task of a run root")
    p.add_argument("run_root")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("report", help="write a static HTML page of a run root: curves, restarts, attempts")
    p.add_argument("run_root")
    p.add_argument(
        "-o", "--output", metavar="DIR", help="where to write index.html (default RUN_ROOT/.report)"
    )
    p.add_argument("--no-plots", action="store_true", help="write the page without matplotlib figures")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("resume", help="resubmit preempted (and retryable failed) tasks, exactly once")
    p.add_argument("run_root")
    p.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    p.add_argument(
        "--watch", type=float, default=0.0, metavar="SECONDS", help="repeat until all tasks are done"
    )
    from candle_restart.coordinator.policy import Policy  # the one source of the defaults

    sweep_or = "default: the sweep's restart: policy, else"
    p.add_argument("--max-failures", type=int, help=f"{sweep_or} {Policy.max_failures}")
    p.add_argument("--max-preemptions", type=int, help=f"{sweep_or} {Policy.max_preemptions}")
    p.add_argument(
        "--backoff",
        type=float,
        help=f"seconds before the first retry of a failure ({sweep_or} {Policy.backoff_seconds:g})",
    )
    p.add_argument("--restart-corrupt", action="store_true", help="set corrupt ckpts/ aside and start over")
    p.add_argument(
        "--include-cancelled", action="store_true", help="resubmit tasks whose job a user cancelled"
    )
    p.add_argument(
        "--backend", choices=["local", "slurm"], default="local", help="where to submit (default local)"
    )
    p.set_defaults(func=cmd_resume)
    p = sub.add_parser("sweep", help="run a YAML sweep through Parsl, or show its status")
    p.add_argument("sweep_command", choices=["run", "status"])
    p.add_argument("config", help="the sweep YAML")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("slurm", help="submit a sweep's tasks to Slurm as job arrays")
    p.add_argument("slurm_command", choices=["submit"])
    p.add_argument("config", help="the sweep YAML (executor.slurm gives the sbatch directives)")
    p.add_argument("--no-requeue", action="store_true", help="submit with --no-requeue")
    p.set_defaults(func=cmd_slurm)
    p = sub.add_parser("ckpt", help="list and verify the checkpoints of a ckpt_directory")
    p.add_argument("ckpt_dir")
    p.add_argument("--checksums", action="store_true", help="also verify CRC-32 checksums")
    p.set_defaults(func=cmd_ckpt)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file's odd text (lone surrogates) is shown escaped
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CkptError as exc:
        print(f"candle-restart: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an I/O error (a full disk): reported in one line, worth a retry
        print(f"candle-restart: {exc.filename or args.command}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
