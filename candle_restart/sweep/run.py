"""Driving a sweep to the end through Parsl: ``candle-restart sweep run CONFIG``.

`run_sweep` expands the YAML into task directories, loads a Parsl
configuration (local HighThroughputExecutor, or Slurm), and repeats
`candle_restart.coordinator.resume` with the Parsl backend until every task
of the sweep is completed or given up, waiting on Parsl futures between
rounds and printing a progress line when something changed: the time, the
task counts by state in the words of the final table's summary line, the
preemptions and failures so far, and an ETA from this run's own throughput
(tasks completed by an earlier run do not count).  A sweep with nothing left
to do submits nothing and says so.

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
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from candle_restart.ckpt import parse_params
from candle_restart.ckpt.envparams import with_environment
from candle_restart.coordinator import Backend, Policy, TaskStatus, resume, scan
from candle_restart.coordinator.policy import with_values
from candle_restart.coordinator.report import summary, table
from candle_restart.coordinator.resume import ResumeOutcome
from candle_restart.errors import CkptError
from candle_restart.records.epochs import count_events, events_path
from candle_restart.runtime.preempt import EXIT_INTERRUPTED
from candle_restart.sweep.expand import Expansion, expand
from candle_restart.sweep.schema import Sweep
from candle_restart.sweep.yamlfile import SweepError
from candle_restart.task.launch import task_params
from candle_restart.task.process import pid_alive
from candle_restart.task.taskdir import TaskDir

if TYPE_CHECKING:
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


def _commits(ckpts: Path) -> int:
    """Checkpoints committed in ``ckpts``: its commit events, or, for a writer that keeps no
    ``events.jsonl`` (CANDLE's own checkpoint code run as a ``command``), the ``model wrote:``
    lines of its ``ckpt.log`` (the old-format fallback, the only place the log is counted)."""
    if events_path(ckpts).exists():
        return count_events(ckpts, "commit")
    log = ckpts / "ckpt.log"
    try:
        return log.read_text(errors="replace").count("model wrote:")
    except OSError:
        return 0


class _Interrupt:
    """Counts SIGINTs (Ctrl-C) instead of raising KeyboardInterrupt at an arbitrary point."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1


def _checkpoint_signal(task: TaskDir) -> signal.Signals:
    """The first of the task's ``ckpt_signals`` (what its runner armed); USR1 when it cannot be read."""
    try:
        settings = parse_params(with_environment(task_params(task.load_spec(), task)))
        return signal.Signals[f"SIG{settings.signals[0]}"]
    except (CkptError, KeyError, IndexError):
        return signal.SIGUSR1


def _local_runner(task: TaskDir) -> tuple[int, bool] | None:
    """(pid, armed) of the task's runner when it runs on this host, else None; ``armed`` once it
    has had a second to arm its signals."""
    state, _ = task.read_state()
    if not state or state.get("status") != "running" or not isinstance(state.get("pid"), int):
        return None
    if pid_alive(str(state.get("host")), state["pid"], state.get("pid_start")) != "running":
        return None
    try:  # arming takes milliseconds after state.json says running; a signal before it would kill
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(str(state.get("started")))).total_seconds()
    except (TypeError, ValueError):
        age = float("inf")
    return state["pid"], age >= 1.0


def stop_tasks(tasks: list[TaskDir], interrupt: _Interrupt, log: Log, wait_seconds: float) -> set[str]:
    """Ask every runner of ``tasks`` on this host to checkpoint and exit 75; wait for them.

    Runners that start meanwhile (queued tasks) are asked too.  Returns the ids of the tasks asked.
    """
    asked: dict[str, int] = {}
    deadline = time.monotonic() + wait_seconds
    waited = interrupt.count
    while True:
        running = {t.task_id: (t, found) for t in tasks if (found := _local_runner(t)) is not None}
        for task_id, (task, (pid, armed)) in running.items():
            if armed and asked.get(task_id) != pid:
                sig = _checkpoint_signal(task)
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    continue
                asked[task_id] = pid
                log(f"{task_id}: sent {sig.name} to its runner (pid {pid}): checkpoint and stop")
        if not running or time.monotonic() > deadline or interrupt.count > waited:
            return set(asked)
        time.sleep(0.2)


class _DemoPreemption:
    """Sends SIGUSR1 to one task's runner after it wrote ``after_checkpoints`` more checkpoints,
    ``signals`` times (one per attempt)."""

    def __init__(self, task: TaskDir, after_checkpoints: int, signals: int, log: Log) -> None:
        self.task, self.after, self.left, self.log = task, after_checkpoints, signals, log
        self.signalled: set[int] = set()

    def poll(self) -> None:
        if self.left <= 0:
            return
        state, _ = self.task.read_state()
        if not state or state.get("status") != "running" or state.get("host") != socket.gethostname():
            return
        pid = int(state.get("pid", 0))
        commits = _commits(self.task.ckpts)
        if pid in self.signalled or commits < self.after * (len(self.signalled) + 1):
            return
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            return
        self.signalled.add(pid)
        self.left -= 1
        self.log(f"demo: sent SIGUSR1 to {self.task.task_id} (pid {pid}) mid-training")


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
            return any(_local_runner(t) is not None for t in self.tasks)
        return any((t.read_state()[0] or {}).get("status") == "running" for t in self.tasks)

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


def run_sweep(sweep: Sweep, *, log: Log = print, poll_seconds: float = 2.0) -> int:
    """Run ``sweep`` to the end; return 0 when every task completed, 1 otherwise, 130 when interrupted."""
    if sweep.executor["kind"] == "slurm":
        from candle_restart.slurm import require_slurm

        require_slurm(str(sweep.source), run_root=sweep.run_root)  # one line, exit 2, before anything is written
    import parsl

    from candle_restart.parsl import STOP_RETRIES, ParslBackend
    from candle_restart.parsl.configs import check_run_dir, parsl_config, shell_safe_run_dir

    try:  # a path Parsl cannot quote: one line, before anything is written
        check_run_dir(sweep.executor["kind"], sweep.run_root / ".parsl")
    except RuntimeError as exc:
        raise SweepError(str(sweep.source), "run_root", str(exc)) from None
    search = _open_search(sweep, log)
    expansion = expand(sweep) if search is None else Expansion(search.tasks, 0)
    if search is None:
        log(f"sweep {sweep.name}: {len(expansion.tasks)} tasks in {sweep.run_root} ({expansion.created} new)")
    policy = policy_of(sweep)
    backend = ParslBackend()
    before = sweep_statuses(sweep, expansion.tasks, {})
    if search is None and all(s.state == "completed" for s in before):
        log(f"nothing to do: all {len(before)} tasks are completed; nothing submitted")
        return 0
    paths = contextlib.ExitStack()  # Parsl's run dir, through a link when its path needs quoting
    run_dir = Path(paths.enter_context(shell_safe_run_dir(sweep.run_root / ".parsl")))
    config = parsl_config(sweep.executor, run_dir, policy)
    demo = None
    if sweep.demo is not None:
        target = expansion.tasks[min(sweep.demo["preempt_task"], len(expansion.tasks) - 1)]
        demo = _DemoPreemption(target, sweep.demo["after_checkpoints"], sweep.demo["signals"], log)
    ids = {t.task_id for t in expansion.tasks}
    done_before = sum(s.state == "completed" for s in before)
    interrupt = _Interrupt()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:  # Parsl's interchange and worker blocks inherit SIGINT ignored: Ctrl-C is the driver's
        dfk = parsl.load(config)
    except BaseException:
        paths.close()
        if search is not None:
            search.close()
        raise
    finally:
        if main:
            signal.signal(signal.SIGINT, interrupt)
    started = time.monotonic()
    workers = _WorkerWatch(sweep.executor["kind"], expansion.tasks, sweep.run_root / ".parsl", log)
    asked: set[str] = set()
    STOP_RETRIES.clear()
    try:
        last_line = ""
        while not interrupt.count:
            outcomes = resume(sweep.run_root, backend, policy, log=log, only=ids)
            if search is not None:  # tell what ended, prune, ask new trials (submitted next round)
                search.step(outcomes)
                ids |= {t.task_id for t in search.tasks}
            gave_up = sum(o.decision.action in ("give_up", "report") for o in outcomes)
            statuses = [  # classified before this pass acted: a task just submitted is queued now
                replace(o.status, state="queued") if o.acted and o.decision.action == "submit" else o.status
                for o in outcomes
            ]
            line = progress_counts(statuses, gave_up)
            if line != last_line:  # print when something changed, not every poll
                left = eta(statuses, started, gave_up, done_before)
                log(f"{time.strftime('%H:%M:%S')} progress: {line}; ETA {left}")
                last_line = line
            if all(o.final for o in outcomes) and (search is None or search.done()):
                break
            pending = backend.pending()
            if not workers.check(outcomes, bool(pending)):
                break
            timeout = 0.5 if demo and demo.left else poll_seconds
            if pending:
                wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            else:
                time.sleep(timeout)  # only waiting out a backoff: nothing to wait on
            if demo:
                demo.poll()
        if interrupt.count:
            STOP_RETRIES.set()  # a task stopped now stays stopped: Parsl does not rerun it
            log(
                f"interrupted: asking the running tasks to checkpoint and stop (up to {STOP_WAIT_SECONDS:.0f} s; Ctrl-C again to stop waiting)"
            )
            asked = stop_tasks(expansion.tasks, interrupt, log, STOP_WAIT_SECONDS)
    finally:
        dfk.cleanup()
        parsl.clear()
        paths.close()
        if search is not None:
            search.close()
        if main:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        STOP_RETRIES.clear()
    statuses = sweep_statuses(sweep, expansion.tasks, {})
    if interrupt.count:
        log(table(statuses))
        backend_flag = " --backend slurm" if sweep.executor["kind"] == "slurm" else ""
        stopped = sum(s.task_id in asked and s.state == "preempted" for s in statuses)
        log(
            f"interrupted: {stopped} of {len(asked)} running tasks stopped with a checkpoint; continue with "
            f"`candle-restart resume {sweep.run_root}{backend_flag}` or `candle-restart sweep run {sweep.source}`"
        )
        return EXIT_INTERRUPTED
    for s in statuses:
        if s.preemptions:
            log(f"{s.task_id}: preempted {s.preemptions} time(s); resumed from ckpts/last each time")
    log(table(statuses))
    if search is not None:
        best = search.best()
        log(f"search: best trial: {best.number} ({best.task.task_id})" if best else "search: no trial completed")
        return 0 if all(s.state in ("completed", "pruned") for s in statuses) else 1
    return 0 if all(s.state == "completed" for s in statuses) else 1


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
