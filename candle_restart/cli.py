"""The ``candle-restart`` command: one subcommand per job (``candle-restart --help`` lists them).

The reading subcommands live in `candle_restart.views.commands`; ``resume``, ``sweep`` and
``slurm`` are here.  Exit codes: 0 done; 2 bad input (one line naming the file, key and
problem; a folder that is not a run root or a task is bad input too); 1 an I/O error, or a
pass over the tasks (``resume``, ``status``, ``results``, ``report``) that could not read or
act on some task (one line each; the pass went on over the others);
141 stdout was closed (``status --json | head -1``); ``run`` exits as DESIGN says
(0, 75, 1, 2, 3).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from candle_restart.ckpt import CkptError
from candle_restart.coordinator.policy import BUDGETS, HOST_KEYS, Policy  # the one source of the defaults
from candle_restart.runtime.preempt import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_INTERRUPTED, EXIT_IO_ERROR
from candle_restart.views.commands import (
    cmd_ckpt,
    cmd_demo,
    cmd_report,
    cmd_results,
    cmd_run,
    cmd_status,
    request_retries,
)
from candle_restart.views.hosts import cmd_hosts
from candle_restart.views.output import quiet_broken_pipe
from candle_restart.views.where import check_run_root


def cmd_resume(args: argparse.Namespace) -> int:
    import time

    from candle_restart.coordinator import Backend, LocalBackend, resume
    from candle_restart.coordinator.report import summary
    from candle_restart.sweep.run import run_root_policy

    policy = run_root_policy(  # flags given > the sweep's recorded restart: policy > defaults
        Path(args.run_root),
        log=lambda m: print(m, flush=True),
        **{name: getattr(args, name) for name in (*BUDGETS, *HOST_KEYS)},
        backoff_seconds=args.backoff,
        restart_corrupt=args.restart_corrupt,
        include_cancelled=args.include_cancelled,
    )
    backend: Backend = LocalBackend()
    if args.backend == "slurm":
        from candle_restart.slurm import SlurmBackend, read_options

        backend = SlurmBackend(read_options(Path(args.run_root)))
    check_run_root(args.run_root)
    failed = False  # some task could not be read or acted on, in some pass: exit 1 at the end
    if args.retry_failed is not None:
        failed = request_retries(args.run_root, backend, policy, args.retry_failed, args.dry_run)
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
        failed = failed or any(o.error for o in outcomes)
        if not args.watch or all(o.final for o in outcomes):
            return EXIT_IO_ERROR if failed else EXIT_COMPLETED
        time.sleep(args.watch)


def cmd_slurm(args: argparse.Namespace) -> int:
    from candle_restart.coordinator import resume
    from candle_restart.coordinator.report import summary
    from candle_restart.executor import SlurmOptions
    from candle_restart.slurm import SlurmBackend, require_slurm
    from candle_restart.sweep import expand, parse_sweep
    from candle_restart.sweep.run import policy_of

    sweep = parse_sweep(args.config)
    require_slurm(str(sweep.source), None, sweep.run_root)  # before anything is written
    expansion = expand(sweep)
    options = sweep.executor.get("slurm", SlurmOptions()).copy()
    if args.no_requeue:
        options["requeue"] = False
    ids = {t.task_id for t in expansion.tasks}
    outcomes = resume(
        sweep.run_root, SlurmBackend(options), policy_of(sweep), log=lambda m: print(m, flush=True), only=ids
    )
    for o in outcomes:
        if o.error:
            print(o.error, flush=True)
    print(summary([o.status for o in outcomes]))
    return EXIT_IO_ERROR if any(o.error for o in outcomes) else EXIT_COMPLETED


def cmd_sweep(args: argparse.Namespace) -> int:
    from candle_restart.sweep import parse_sweep

    sweep = parse_sweep(args.config)
    if args.sweep_command == "status":
        from candle_restart.sweep.run import sweep_status

        print(sweep_status(sweep))
        return 0
    from candle_restart.sweep.run import run_sweep

    try:  # once tasks run, run_sweep handles Ctrl-C itself (checkpoint, stop, say how to go on)
        return run_sweep(sweep, log=lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        print(f"interrupted before any task started; run `candle-restart sweep run {args.config}` again")
        return EXIT_INTERRUPTED


def _share(text: str) -> float:
    """A share from 0 to 1 (``--max-excluded-share``); argparse says the problem in one line."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1, got {text!r}")
    return value


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (when it has one worth showing) and keeps descriptions' lines."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or not action.help:
            return action.help
        return super()._get_help_string(action)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("candle-restart")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from candle_restart import __version__

        return __version__


COMMANDS = {  # name: (one line for the list, the subcommand's description)
    "status": (
        "classify every task of a run root: state, parameters, epoch, best metric, reason",
        "One row per task: its id, the parameters that differ between tasks, its state (new, queued,\n"
        "running, preempted, failed, cancelled, completed, corrupt), epoch, best metric, attempts and\n"
        "the full reason, fitted to the terminal; then the counts. --json gives the same for scripts.",
    ),
    "results": (
        "one row per task: parameters, state, best and final metric, result; names the best task",
        "A table (or CSV, or JSON) of every task's varied parameters, state, best metric and its epoch,\n"
        "final metric and the value its training function returned, sorted by a metric, and the best\n"
        "task. --sort NAME[:min|:max] takes the checkpointed metric, 'final', a key of the result or\n"
        "a parameter; --sort trial lists a search's trials in the order they were asked.",
    ),
    "hosts": (
        "the bad-host table of a run root; --clear forgets hosts' bad ends so far",
        "One row per host: attempts, bad ends (hang, node_fail, an error not reproduced on another\n"
        "host, slow epochs against the sweep's other hosts), whether the next Slurm submissions\n"
        "--exclude it, and why (restart: host_bad_ends, max_excluded_share). --clear [HOST ...]\n"
        "records that the ends so far no longer count (status --hosts shows the same table).",
    ),
    "resume": (
        "resubmit new, preempted and retryable failed tasks, exactly once",
        "One pass (or, with --watch, passes until every task is done) of the restart policy over a\n"
        "run root. --retry-failed [TASK ...] first asks again for tasks that failed, were bad input\n"
        "or were given up (their failure and preemption counts start again; nothing is deleted).\n"
        "A sweep's restart: policy (recorded in RUN_ROOT/.sweep-NAME.json) replaces the defaults\n"
        "below; --max-failures, --max-preemptions and --backoff replace both.",
    ),
    "report": (
        "write a static HTML page of a run root: counts, curves, restarts, attempts",
        "Writes RUN_ROOT/.report/index.html (or -o DIR) and its plots; only reads the run root.",
    ),
    "run": (
        "run one task directory once (exit 0 done, 75 resume me, 1 failed, 2 bad input, 3 busy)",
        "Runs the task in TASK_DIR/task.json once and records how it ended in state.json.",
    ),
    "sweep": (
        "run a YAML sweep through Parsl to the end, or show its status",
        "sweep run CONFIG expands the YAML into task directories and runs them through Parsl,\n"
        "resuming until every task is done; sweep status CONFIG shows its status table.",
    ),
    "slurm": (
        "submit a sweep's tasks to Slurm as a job array",
        "Submits the sweep's tasks as one Slurm job array; keep it going with resume --backend slurm.",
    ),
    "ckpt": (
        "list and verify the checkpoints of a ckpt_directory (or of a task directory's ckpts/)",
        "Lists each kept checkpoint, verifies it, and says which one a restart would load.",
    ),
    "demo": (
        "train a small example, kill it, resume it",
        "Trains a tiny example, kills it mid-training and resumes it from its checkpoint.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="candle-restart",
        description="Checkpoint/restart service for CANDLE-style training: run, watch and resume sweeps.",
        epilog="candle-restart COMMAND --help describes each command and its options.",
        formatter_class=_Help,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        line, description = COMMANDS[name]
        return sub.add_parser(name, help=line, description=description, formatter_class=_Help)

    p = command("status")
    p.add_argument("run_root", help="the folder holding one folder per task")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--hosts", action="store_true", help="the bad-host table instead: attempts, bad ends, excluded and why"
    )
    p.set_defaults(func=cmd_status)
    p = command("hosts")
    p.add_argument("run_root", help="the folder holding one folder per task")
    p.add_argument(
        "--clear",
        nargs="*",
        metavar="HOST",
        help="forget the bad ends so far of every host (or of the HOSTs named); recorded in RUN_ROOT/.hosts.jsonl",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_hosts)
    p = command("results")
    p.add_argument("run_root", help="the folder holding one folder per task")
    p.add_argument(
        "--sort", metavar="METRIC[:min|:max]", help="what to rank by (default: the checkpointed metric)"
    )
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_results)
    p = command("resume")
    p.add_argument("run_root", help="the folder holding one folder per task")
    p.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    p.add_argument(
        "--watch",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="repeat every SECONDS until all tasks are done",
    )
    p.add_argument(
        "--retry-failed",
        nargs="*",
        metavar="TASK",
        help="first ask again for failed, bad-input and given-up tasks (all, or the TASKs named)",
    )
    # The flags default to None ("not given"): the sweep's recorded restart: policy, else these.
    for name, what in {**BUDGETS, **HOST_KEYS}.items():
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=_share if name == "max_excluded_share" else int,
            metavar="SHARE" if name == "max_excluded_share" else "N",
            help=f"{what} (default: {getattr(Policy, name)})",
        )
    p.add_argument(
        "--backoff",
        type=float,
        help=f"seconds before the first retry of a failure (default: {Policy.backoff_seconds:g})",
    )
    p.add_argument("--restart-corrupt", action="store_true", help="set corrupt ckpts/ aside and start over")
    p.add_argument(
        "--include-cancelled", action="store_true", help="resubmit tasks whose job a user cancelled"
    )
    p.add_argument("--backend", choices=["local", "slurm"], default="local", help="where to submit")
    p.set_defaults(func=cmd_resume)
    p = command("report")
    p.add_argument("run_root", help="the folder holding one folder per task")
    p.add_argument(
        "-o", "--output", metavar="DIR", help="where to write index.html (default: RUN_ROOT/.report)"
    )
    p.add_argument("--no-plots", action="store_true", help="write the page without matplotlib figures")
    p.set_defaults(func=cmd_report)
    p = command("run")
    p.add_argument("task_dir", help="a task directory (it holds task.json)")
    p.set_defaults(func=cmd_run)
    p = command("sweep")
    p.add_argument("sweep_command", choices=["run", "status"], help="what to do")
    p.add_argument("config", help="the sweep YAML")
    p.set_defaults(func=cmd_sweep)
    p = command("slurm")
    p.add_argument("slurm_command", choices=["submit"], help="what to do")
    p.add_argument("config", help="the sweep YAML (executor.slurm gives the sbatch directives)")
    p.add_argument("--no-requeue", action="store_true", help="submit with --no-requeue")
    p.set_defaults(func=cmd_slurm)
    p = command("ckpt")
    p.add_argument("ckpt_dir", help="a ckpt_directory, or a task directory (its ckpts/)")
    p.add_argument("--checksums", action="store_true", help="also verify CRC-32 checksums")
    p.set_defaults(func=cmd_ckpt)
    p = command("demo")
    p.add_argument("--dir", default="demo-run", help="work directory (wiped first)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file's odd text (lone surrogates) is shown escaped
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:  # `status --json | head -1`: the reader has what it wanted
        return quiet_broken_pipe()
    except CkptError as exc:
        print(f"candle-restart: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # an I/O error (a full disk): reported in one line, worth a retry
        print(f"candle-restart: {exc.filename or args.command}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_IO_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
