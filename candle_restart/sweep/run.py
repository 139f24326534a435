"""Driving a sweep to the end through Parsl: ``candle-restart sweep run CONFIG``.

`run_sweep` expands the YAML into task directories, loads a Parsl
configuration (local HighThroughputExecutor, or Slurm), and repeats
`candle_restart.coordinator.resume` with the Parsl backend until every task
of the sweep is completed or given up, waiting on Parsl futures between
rounds and printing a progress line when something changed: the time, the
task counts by state in the words of the final table's summary line, the
preemptions and failures so far, and an ETA from this run's own throughput
(tasks completed by an earlier run do not count).  A sweep with nothing left
to do submits nothing and says so.  `SweepRun` is the driver (`run_sweep` runs one); the
runners it signals are found by `candle_restart.sweep.runners`.

``sweep run`` blocks until the sweep ends.  Ctrl-C (SIGINT) does not end it
with a traceback: Parsl stops rerunning tasks, every task running on this
host is sent its first checkpoint signal (``ckpt_signals``, USR1 by default)
so it commits a checkpoint and exits 75, the driver waits for them up to
`STOP_WAIT_SECONDS` (a second Ctrl-C stops waiting), shuts Parsl down, prints
the table and one line saying how to continue, and returns 130 (`EXIT_INTERRUPTED`).  Parsl's own
processes are started with SIGINT ignored, so a terminal's Ctrl-C (sent to the
whole foreground process group) reaches only the driver.

Submitted tasks that wait `WORKER_WAIT_SECONDS` without any starting are reported in one line
(Parsl's workers never started, or cannot connect); a ``local`` sweep then stops with exit 1,
a cluster's keeps waiting for its blocks.

The ``demo`` block of the YAML (off unless present) makes the driver send a
real SIGUSR1 to one task's runner mid-training, ``signals`` times, so a
preemption and its resume can be watched.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from candle_restart.coordinator import Backend, Policy, TaskStatus, resume, scan
from candle_restart.coordinator.policy import with_values
from candle_restart.coordinator.report import summary, table
from candle_restart.coordinator.resume import ResumeOutcome
from candle_restart.runtime.preempt import EXIT_INTERRUPTED
from candle_restart.sweep.expand import Expansion, expand
from candle_restart.sweep.runners import DemoPreemption, Interrupt, local_runner, stop_tasks
from candle_restart.sweep.schema import Sweep
from candle_restart.sweep.yamlfile import SweepError
from candle_restart.task.taskdir import TaskDir

if TYPE_CHECKING:
    from candle_restart.parsl import ParslBackend
    from candle_restart.sweep.search import Search

Log = Callable[[str], None]
STOP_WAIT_SECONDS = 60.0  # how long Ctrl-C waits for the running tasks' checkpoints
WORKER_WAIT_SECONDS = 180.0  # how long submitted tasks may wait for a Parsl worker before the driver says so


def policy_of(sweep: Sweep) -> Policy:
    """The sweep's ``restart:`` policy over `Policy`'s defaults."""
    return with_values(Policy(), **sweep.restart)


def run_root_policy(run_root: Path, log: Log = print, **flags: float | None) -> Policy:
    """The policy of ``candle-restart resume RUN_ROOT``: `Policy`'s defaults, then the ``restart:``
    policy the run root's sweep recorded (`recorded_restart`), then every flag given (not None).

    A manifest that cannot be read, or sweeps that disagree, never stop a resume: the reason is
    logged as a warning and the defaults stand in for the recorded policy.
    """
    from candle_restart.sweep.expand import recorded_restart
    from candle_restart.sweep.schema import SweepError

    try:
        restart, manifest = recorded_restart(run_root)
    except SweepError as exc:
        log(f"warning: {exc}; the restart policy is the defaults and the flags given")
        restart, manifest = {}, None
    policy = with_values(Policy(), **restart)
    if manifest is not None:
        given = {k for k, v in flags.items() if v is not None}
        kept = ", ".join(f"{k}={v}" for k, v in sorted(restart.items()) if k not in given)
        if kept:
            log(f"restart policy from {manifest.name}: {kept}")
    return with_values(policy, **flags)


def sweep_statuses(sweep: Sweep, tasks: list[TaskDir], backends: dict[str, Backend]) -> list[TaskStatus]:
    return scan(sweep.run_root, backends, only={t.task_id for t in tasks})


def progress_counts(statuses: list[TaskStatus], gave_up: int) -> str:
    """The counts of a progress line: the table's summary words, then what happened so far."""
    preemptions = sum(s.preemptions for s in statuses)
    failures = sum(s.failures for s in statuses)
    return (
        f"{summary(statuses)}; {preemptions} preemptions and {failures} failures so far; {gave_up} given up"
    )


def eta(statuses: list[TaskStatus], started: float, gave_up: int, done_before: int = 0) -> str:
    """Seconds left at this run's own pace: the tasks it completed (not ``done_before``) over its time."""
    done = sum(s.state == "completed" for s in statuses)
    finished_here = done - done_before
    remaining = len(statuses) - done - gave_up
    if finished_here <= 0 or remaining <= 0:
        return "-"
    return f"{(time.monotonic() - started) / finished_here * remaining:.0f} s"


class _WorkerWatch:
    """Says so when submitted tasks wait `WORKER_WAIT_SECONDS` while no runner of the sweep runs and
    none starts (Parsl's workers did not start, or cannot connect); a ``local`` sweep then stops
    (nothing else would start them), a cluster's waits on (its blocks may be queued)."""

    def __init__(self, kind: str, tasks: list[TaskDir], run_dir: Path, log: Log) -> None:
        self.kind, self.tasks, self.run_dir, self.log = kind, tasks, run_dir, log
        self.since: float | None = None  # since when tasks have waited with no runner running
        self.starts: int | None = None
        self.said = False

    def _busy(self) -> bool:
        """A runner of the sweep is running: the workers exist."""
        if self.kind == "local":
            return any(local_runner(t) is not None for t in self.tasks)
        return any((state := t.load_state()[0]) is not None and state.status == "running" for t in self.tasks)

    def check(self, outcomes: list[ResumeOutcome], waiting: bool) -> bool:
        """False when the sweep should stop: a local executor whose workers never started."""
        starts = sum(o.status.attempts for o in outcomes)
        if starts != self.starts or not waiting or self._busy():
            self.starts, self.since = starts, time.monotonic()
            return True
        if self.said or time.monotonic() - (self.since or 0.0) < WORKER_WAIT_SECONDS:
            return True
        self.said = True
        where = f"Parsl's worker logs are under {self.run_dir}"
        if self.kind == "local":
            self.log(
                f"no task started in {WORKER_WAIT_SECONDS:.0f} s: Parsl's local workers never started "
                f"({where}); stopping"
            )
            return False
        self.log(f"no task started in {WORKER_WAIT_SECONDS:.0f} s: are the {self.kind} blocks queued? ({where})")
        return True


class SweepRun:
    """One ``sweep run``, from `start` to `finish` (see the module docstring; `run` does it all).

    `start` checks the run root, opens the search (if any), expands the sweep and loads Parsl
    with SIGINT counted by `interrupts`; each `round` is one `resume` pass over the sweep's tasks,
    the search's step (`candle_restart.sweep.search.Search.step`: tell what ended, prune, ask new
    trials, submitted by the next round), a progress line when something changed, and a wait on
    Parsl's futures; `interrupt` (after a Ctrl-C) stops Parsl's retries and asks the running tasks
    to checkpoint and stop; `finish` shuts Parsl down (`close`), prints the table and returns the
    exit code.  Nothing is kept at module level: the retry handler's stop flag is `stopping`.
    """

    def __init__(self, sweep: Sweep, *, log: Log = print, poll_seconds: float = 2.0) -> None:
        self.sweep, self.log, self.poll_seconds = sweep, log, poll_seconds
        self.policy = policy_of(sweep)
        self.stopping = threading.Event()  # set: Parsl's retry handler reruns nothing (we are stopping)
        self.interrupts = Interrupt()
        self.search: Search | None = None
        self.tasks: list[TaskDir] = []  # the sweep's tasks (a search's grow as it asks trials)
        self.ids: set[str] = set()
        self.asked: set[str] = set()  # the tasks `interrupt` asked to stop
        self.done_before = 0  # tasks completed before this run (not counted in its pace)
        self.started = time.monotonic()
        self.demo: DemoPreemption | None = None
        self._backend: ParslBackend | None = None
        self._workers: _WorkerWatch | None = None
        self._last_line = ""
        self._closing = contextlib.ExitStack()  # what `close` undoes, last first
        self._sigint: Callable[[int, FrameType | None], object] | int | None = None  # SIGINT's handler before

    def run(self) -> int:
        """Run the sweep to the end; 0 when every task completed, 1 otherwise, 130 when interrupted."""
        try:
            code = self.start()
            if code is not None:
                return code
            while not self.interrupts.count and self.round():
                pass
            if self.interrupts.count:
                self.interrupt()
        finally:
            self.close()
        return self.finish()

    def start(self) -> int | None:
        """Check, expand, load Parsl; the exit code when the run ends here (nothing to do), else None.

        Refusals (no Slurm, a run root Parsl cannot quote) are one line, before anything is written.
        """
        sweep = self.sweep
        if sweep.executor["kind"] == "slurm":
            from candle_restart.slurm import require_slurm

            require_slurm(str(sweep.source), run_root=sweep.run_root)  # one line, exit 2
        import parsl

        from candle_restart.parsl import ParslBackend
        from candle_restart.parsl.configs import check_run_dir, parsl_config, shell_safe_run_dir
        from candle_restart.slurm.backend import hosts_to_exclude

        try:
            check_run_dir(sweep.executor["kind"], sweep.run_root / ".parsl")
        except RuntimeError as exc:
            raise SweepError(str(sweep.source), "run_root", str(exc)) from None
        self.search = search = _open_search(sweep, self.log)
        if search is not None:
            self._closing.callback(search.close)
        expansion = expand(sweep) if search is None else Expansion(search.tasks, 0)
        if search is None:
            self.log(f"sweep {sweep.name}: {len(expansion.tasks)} tasks in {sweep.run_root} ({expansion.created} new)")
        self.tasks, self.ids = expansion.tasks, {t.task_id for t in expansion.tasks}
        self._backend = ParslBackend()
        before = sweep_statuses(sweep, self.tasks, {})
        if search is None and all(s.state == "completed" for s in before):
            self.log(f"nothing to do: all {len(before)} tasks are completed; nothing submitted")
            return 0
        self.done_before = sum(s.state == "completed" for s in before)
        # Parsl's run dir, through a link when its path needs quoting
        run_dir = Path(self._closing.enter_context(shell_safe_run_dir(sweep.run_root / ".parsl")))
        exclude = hosts_to_exclude(sweep.executor, sweep.run_root, self.policy, self.log)
        config = parsl_config(sweep.executor, run_dir, self.policy, exclude, stop=self.stopping)
        if sweep.demo is not None:
            target = self.tasks[min(sweep.demo["preempt_task"], len(self.tasks) - 1)]
            self.demo = DemoPreemption(target, sweep.demo["after_checkpoints"], sweep.demo["signals"], self.log)
        if threading.current_thread() is threading.main_thread():
            # Parsl's interchange and worker blocks inherit SIGINT ignored: Ctrl-C is the driver's.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            self._sigint = previous if previous is not None else signal.default_int_handler
            try:
                dfk = parsl.load(config)
            finally:
                signal.signal(signal.SIGINT, self.interrupts)
        else:
            dfk = parsl.load(config)
        self._closing.callback(parsl.clear)
        self._closing.callback(dfk.cleanup)
        self.started = time.monotonic()
        self._workers = _WorkerWatch(sweep.executor["kind"], self.tasks, sweep.run_root / ".parsl", self.log)
        return None

    def round(self) -> bool:
        """One pass over the sweep's tasks, then a wait (see the class docstring); False when the
        sweep is over: every task final (and the search done), or no Parsl worker will come."""
        assert self._backend is not None and self._workers is not None, "start() first"
        outcomes = resume(self.sweep.run_root, self._backend, self.policy, log=self.log, only=self.ids)
        if self.search is not None:  # tell what ended, prune, ask new trials (submitted next round)
            self.search.step(outcomes)
            self.ids |= {t.task_id for t in self.search.tasks}
        self._progress(outcomes)
        if all(o.final for o in outcomes) and (self.search is None or self.search.done()):
            return False
        pending = self._backend.pending()
        if not self._workers.check(outcomes, bool(pending)):
            return False
        timeout = 0.5 if self.demo and self.demo.left else self.poll_seconds
        if pending:
            wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        else:
            time.sleep(timeout)  # only waiting out a backoff: nothing to wait on
        if self.demo:
            self.demo.poll()
        return True

    def _progress(self, outcomes: list[ResumeOutcome]) -> None:
        """Print the progress line when something changed since the last one (not every poll)."""
        gave_up = sum(o.decision.action in ("give_up", "report") for o in outcomes)
        statuses = [  # classified before this pass acted: a task just submitted is queued now
            replace(o.status, state="queued") if o.acted and o.decision.action == "submit" else o.status
            for o in outcomes
        ]
        line = progress_counts(statuses, gave_up)
        if line != self._last_line:
            left = eta(statuses, self.started, gave_up, self.done_before)
            self.log(f"{time.strftime('%H:%M:%S')} progress: {line}; ETA {left}")
            self._last_line = line

    def interrupt(self) -> None:
        """After a Ctrl-C: a task stopped now stays stopped (Parsl reruns nothing); ask the running
        tasks on this host to checkpoint and stop, waiting up to `STOP_WAIT_SECONDS` (a second
        Ctrl-C stops waiting)."""
        self.stopping.set()
        self.log(
            f"interrupted: asking the running tasks to checkpoint and stop (up to {STOP_WAIT_SECONDS:.0f} s; "
            "Ctrl-C again to stop waiting)"
        )
        self.asked = stop_tasks(self.tasks, self.interrupts, self.log, STOP_WAIT_SECONDS)

    def close(self) -> None:
        """Shut Parsl down, close the search and the run dir's link, give SIGINT back; idempotent."""
        self._closing.close()
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None

    def finish(self) -> int:
        """After `close`: the table, how it ended, and the exit code (0, 1, or 130 when interrupted)."""
        sweep = self.sweep
        statuses = sweep_statuses(sweep, self.tasks, {})
        if self.interrupts.count:
            self.log(table(statuses))
            backend_flag = " --backend slurm" if sweep.executor["kind"] == "slurm" else ""
            stopped = sum(s.task_id in self.asked and s.state == "preempted" for s in statuses)
            self.log(
                f"interrupted: {stopped} of {len(self.asked)} running tasks stopped with a checkpoint; continue "
                f"with `candle-restart resume {sweep.run_root}{backend_flag}` or `candle-restart sweep run {sweep.source}`"
            )
            return EXIT_INTERRUPTED
        for s in statuses:
            if s.preemptions:
                self.log(f"{s.task_id}: preempted {s.preemptions} time(s); resumed from ckpts/last each time")
        self.log(table(statuses))
        if self.search is not None:
            best = self.search.best()
            self.log(f"search: best trial: {best.number} ({best.task.task_id})" if best else "search: no trial completed")
            return 0 if all(s.state in ("completed", "pruned") for s in statuses) else 1
        return 0 if all(s.state == "completed" for s in statuses) else 1


def run_sweep(sweep: Sweep, *, log: Log = print, poll_seconds: float = 2.0) -> int:
    """Run ``sweep`` to the end (`SweepRun`); 0 when every task completed, 1 otherwise, 130 when interrupted."""
    return SweepRun(sweep, log=log, poll_seconds=poll_seconds).run()


def _open_search(sweep: Sweep, log: Log) -> Search | None:
    """The sweep's search, rebuilt and holding its lease (`candle_restart.sweep.search`); None without one."""
    if sweep.search is None:
        return None
    from candle_restart.sweep.search import open_search

    return open_search(sweep, log)


def sweep_status(sweep: Sweep) -> str:
    """The status table of the sweep's tasks (those that exist; nothing is created)."""
    from candle_restart.sweep.expand import parameter_sets
    from candle_restart.task.taskdir import make_task_id

    if sweep.search is not None:  # its trials so far, in ask order
        from candle_restart.sweep.search import search_status

        return search_status(sweep, table(sweep_statuses(sweep, _trials(sweep), {})))
    tasks = [TaskDir(Path(sweep.run_root) / make_task_id(sweep.name, p)) for p in parameter_sets(sweep)]
    present = [t for t in tasks if t.task_file.exists()]
    if not sweep.run_root.is_dir():
        return f"sweep {sweep.name}: {sweep.run_root} does not exist yet (0 of {len(tasks)} tasks created)"
    header = f"sweep {sweep.name}: {len(present)} of {len(tasks)} tasks created in {sweep.run_root}"
    return header + "\n" + table(sweep_statuses(sweep, present, {}))


def _trials(sweep: Sweep) -> list[TaskDir]:
    from candle_restart.sweep.search import recorded_trials

    trials = recorded_trials(sweep.run_root, sweep.name)
    return [trials[n] for n in sorted(trials)]
