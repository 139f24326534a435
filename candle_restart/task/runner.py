"""The task runner: one task directory in, one exit code out.

``candle-restart run TASK_DIR`` (or ``python -m candle_restart.task TASK_DIR``):

1. appends ``start`` to the journal (attempt, host, pid, Slurm job/array ids,
   ``SLURM_RESTART_COUNT``) and writes ``state.json`` = running;
2. validates ``task.json`` and the checkpoint gParameters (``ckpt_directory``
   is always the task's ``ckpts/``; ``output_dir`` defaults to ``output/``);
3. arms the preemption signals, then runs the training, with its stdout and
   stderr in ``logs/attempt-NNN.{out,err}``, under the hang watchdog
   (`candle_restart.task.watchdog`: a training whose heartbeat stops past its limit is
   asked to checkpoint and stop, then killed; its end's cause is ``hang``):

   * ``entry`` ``pkg.mod:func``: imported and called in this process with the
     gParameters (CANDLE's ``run(gParameters)``); the callback sees the
     signal at the next batch end, commits and raises `Preempted`;
   * ``command``: run as a child with ``--key value`` arguments (one argv
     item each: no shell ever sees a value), in a session of its own whose
     process group dies with this runner; the signals are forwarded to the group;

   (both in `candle_restart.task.launch`, which also says what a task receives);

4. writes ``state.json`` (status, exit code, reason, cause, the error's last
   lines, the newest checkpoint, the entry's return value as ``result`` and the
   ``metric``, see `candle_restart.task.result`) and appends ``exit`` to the
   journal (``cause``: `ProgramOutcome.cause`; ``timeout`` after a halt before the walltime, for a
   ``command`` too: its callback says so in the heartbeat file; ``hang`` from the watchdog).

A directory without ``task.json`` is not a task: exit 2, nothing written.

The runner holds the task's run lease (``.run.lock``, see
`candle_restart.runtime.lease`) for its whole life, whether a backend started it
or a user did by hand: a second runner of a live task does not train, writes
nothing into ``state.json``, journals ``run_refused`` and exits 3.  A task's
processes live and die together (`candle_restart.task.orphans`): holding the
lease, a runner first ends what an earlier attempt left on this host (its runner
was killed; the pids go into ``start`` as ``ended_pids``) and refuses to run,
as above, while one cannot be ended; when its training ends, it ends what the
training left behind.

Exit codes (DESIGN): 0 completed, 75 stopped on a signal after committing a
checkpoint (resume me), 1 the training raised an error, 2 bad input, 3 not
run because another runner of the task is alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import replace

from candle_restart.ckpt import parse_params
from candle_restart.ckpt.envparams import with_environment
from candle_restart.ckpt.info import commit_key, writer_identity
from candle_restart.errors import CkptError
from candle_restart.records.journal import (
    EXIT,
    ON_PREEMPT,
    RUN_REFUSED,
    STALE_EXIT,
    STALE_START,
    START,
    SUBMIT_INTENT,
    JournalEvent,
)
from candle_restart.records.jsontypes import JsonObject, JsonValue
from candle_restart.records.taskstate import TaskState
from candle_restart.runtime.envvars import (  # the first set by the backends on each submission
    GENERATION_ENV,
    ON_PREEMPT_ENV,
)
from candle_restart.runtime.lease import Lease, LeaseBusy
from candle_restart.runtime.preempt import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_COMPLETED,
    EXIT_RESUME,
    EXIT_TRAINING_ERROR,
    REQUEST,
    arm,
)
from candle_restart.task.attemptfacts import epoch_seconds, scheduler_facts
from candle_restart.task.launch import (
    TAIL_LINES,
    ProgramOutcome,
    heartbeat_file,
    make_default_output,
    newest_checkpoint,
    run_command,
    run_entry,
    task_params,
)
from candle_restart.task.orphans import end_processes, task_processes
from candle_restart.task.process import process_start
from candle_restart.task.progress import progress_key
from candle_restart.task.result import jsonable, metric_summary
from candle_restart.task.stoppoll import StopPoll
from candle_restart.task.taskdir import TaskDir, now_iso
from candle_restart.task.warm import warm_start
from candle_restart.task.watchdog import Limits, Watcher

# A command run after an exit 75 has been recorded (the Slurm backend's self-requeue sets it to
# `scontrol requeue JOB`): one allocation request then carries the task to its end.


def _say(message: str) -> None:
    print(f"candle-restart run: {message}", file=sys.stderr, flush=True)


def _checkpoint_summary(task: TaskDir) -> JsonObject | None:
    found = newest_checkpoint(task)
    if found is None:
        return None
    info = found.info
    return {
        "dir": found.path.name,
        "epoch": info.epoch,
        "epochs": info.epochs,
        "complete": info.complete,
        "position": None if info.position is None else info.position.to_dict(),
        "best_metric_last": info.best_metric_last,
        "best_epoch": info.best_epoch,
        "save_best_metric": info.save_best_metric,
        "best_mode": info.best_mode,
        "timestamp": info.timestamp,
    }


def _on_preempt(task: TaskDir, command: str) -> None:
    """Run the on-preempt hook (no shell); journal what it did."""
    import shlex

    try:
        proc = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120)
        code, error = proc.returncode, proc.stderr.strip()[-300:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        code, error = None, str(exc)
    task.append_run_event(
        JournalEvent(ON_PREEMPT, exit_code=code, extras={"command": command, "error": error})
    )
    _say(f"{task.task_id}: on-preempt hook {command!r} exited {code}")


def _generation() -> int:
    try:
        return int(os.environ.get(GENERATION_ENV, "0"))
    except ValueError:
        return 0


def _stale(task: TaskDir, generation: int) -> bool:
    """True when the journal records a submission newer than ``generation`` (0: run by hand, never stale)."""
    if generation == 0:
        return False
    newest = max((e.generation or 0 for e in task.events() if e.kind == SUBMIT_INTENT), default=0)
    return newest > generation


def _lost(lease: Lease) -> str | None:
    """Why ``lease`` is no longer this runner's (it was paused past it), or None while it holds."""
    try:
        lease.check()
    except CkptError as exc:
        return str(exc)
    return None


def _journal_refusal(task: TaskDir, holder: str) -> None:
    """Journal ``run_refused`` under the task lock (the runs file belongs to the lease holder)."""
    lock = Lease(task.lock_file, task.task_id)
    try:
        with lock.held_for(patient=True):
            task.append_journal(
                JournalEvent(RUN_REFUSED, generation=_generation(), extras={"holder": holder})
            )
    except CkptError as exc:
        _say(f"{task.task_id}: could not journal the refusal: {exc}")


def run_task(path: str | os.PathLike[str]) -> int:
    """Run the task in ``path`` once, holding its run lease; record it; return DESIGN's exit code."""
    task = TaskDir(path)
    if not task.path.is_dir() or not task.task_file.exists():  # nothing is written into a non-task
        _say(f"{task.path}: not a task directory (no {task.task_file.name}); nothing written")
        return EXIT_BAD_INPUT
    lease = Lease(task.run_lock_file, f"the runner of task {task.task_id}")
    try:
        lease.acquire(log=_say)
    except LeaseBusy as exc:
        _journal_refusal(task, str(exc))
        _say(f"{exc}; not running")
        return EXIT_BUSY
    try:
        left = task_processes(task.path)
        ended: list[int] = []
        if left:  # an earlier attempt's runner was killed: its processes go before this one starts
            _say(
                f"{task.task_id}: ending {len(left)} process(es) an earlier attempt left: pids {sorted(left)}"
            )
            alive = end_processes(left)
            if alive:
                why = f"processes of an earlier attempt could not be ended: pids {alive}"
                _journal_refusal(task, why)
                _say(f"{task.task_id}: {why}; not running")
                return EXIT_BUSY
            ended = sorted(left)
        return _run_holding_lease(task, lease, ended)
    finally:
        lease.release()


def _end_leftovers(task: TaskDir) -> None:
    """End what the attempt's training left running (its processes live and die together)."""
    left = task_processes(task.path)
    if left:
        _say(f"{task.task_id}: ending {len(left)} process(es) the training left: pids {sorted(left)}")
        alive = end_processes(left)
        if alive:
            _say(f"{task.task_id}: could not end pids {alive}")


def _run_holding_lease(task: TaskDir, lease: Lease, ended: list[int]) -> int:
    generation = _generation()
    if _stale(task, generation):
        ident_now: JsonObject = {**writer_identity()}  # widened to JSON for the event
        task.append_run_event(JournalEvent(STALE_START, generation=generation, extras=ident_now))
        _say(f"{task.task_id}: submission {generation} was superseded by a newer one; not running")
        return EXIT_COMPLETED
    attempt = task.attempts() + 1
    ident: JsonObject = {**writer_identity(), "pid_start": process_start(os.getpid())}
    running = TaskState.from_json(
        {"status": "running", "attempt": attempt, "started": now_iso(), **ident, "generation": generation},
        str(task.state_file),
    )
    started: JsonObject = {**ident, **scheduler_facts()}  # node, queue wait, allocation end (Slurm)
    if ended:
        started["ended_pids"] = list[JsonValue](ended)
    task.append_run_event(JournalEvent(START, attempt=attempt, generation=generation, extras=started))
    task.write_state(running)

    def disarm() -> None:
        pass

    command = False  # a command keeping its own files shows progress by them (task.progress)
    recording = threading.Lock()  # the training thread's end or the entry watchdog's, whichever first

    def finish(outcome: ProgramOutcome) -> None:
        with recording:
            _end_leftovers(task)
            _record(task, lease, running, outcome, (attempt, generation, ident), command)

    def abandon(why: str) -> None:  # an entry's hung training would not stop: record, then exit
        if recording.locked():
            return  # the training thread returned and records its own end
        finish(
            ProgramOutcome(EXIT_RESUME, f"{why}; the training did not stop, the runner exited", cause="hang")
        )
        os._exit(EXIT_RESUME)

    try:
        spec = task.load_spec()
        command = spec.command is not None
        params = task_params(spec, task)
        make_default_output(params, task)
        settings = parse_params(with_environment(params), where=f"{task.task_file}: params")
        disarm = arm(signal.Signals[f"SIG{name}"] for name in settings.signals)
        watcher = Watcher(heartbeat_file(task), Limits.of(settings))
        watcher.clear()  # an earlier attempt's beats say nothing of this one
        warm_start(task, spec.parent, _say)  # a parent's checkpoint copied in, once
        run = run_entry if spec.entry else run_command
        poll = StopPoll(task.path, _say)  # a search's stop request (pruned.json), seen from any host
        poll.start()
        try:
            outcome = run(spec, params, task, attempt, watcher, abandon)
        finally:
            poll.done()
    except CkptError as exc:
        outcome = ProgramOutcome(EXIT_BAD_INPUT, str(exc))
    except Exception as exc:  # a defect of this runner: recorded as a failed attempt, never left `running`
        tail = traceback.format_exc().rstrip().splitlines()[-TAIL_LINES:]
        _say("\n".join(tail))
        outcome = ProgramOutcome(EXIT_TRAINING_ERROR, f"{type(exc).__name__}: {exc}", tail)
    try:  # still armed: a late signal (Slurm's TERM after USR1) cannot kill the recording
        finish(outcome)
        if outcome.code == EXIT_RESUME and os.environ.get(ON_PREEMPT_ENV):
            _on_preempt(task, os.environ[ON_PREEMPT_ENV])
    finally:
        disarm()
        REQUEST.clear()  # the request was served by this run
    return outcome.code


def _end_extras(task: TaskDir, running: TaskState, ident: JsonObject, outcome: ProgramOutcome) -> JsonObject:
    """The ``exit`` event's extras: the runner, its measured exit and the attempt's median epoch."""
    extras: JsonObject = dict(ident)
    if outcome.exit_seconds is not None:
        extras["exit_seconds"] = outcome.exit_seconds
    pace = epoch_seconds(task.ckpts, running.started)
    if pace is not None:
        extras["epoch_seconds"] = pace
    return extras


def _record(
    task: TaskDir,
    lease: Lease,
    running: TaskState,
    outcome: ProgramOutcome,
    which: tuple[int, int, JsonObject],
    command: bool,
) -> None:
    """Write the attempt's end into ``state.json`` and the runs journal (unless the lease was lost
    or a newer submission took over); ``which``: the attempt, its generation and its runner."""
    attempt, generation, ident = which
    result, note = jsonable(outcome.result)
    checkpoint = _checkpoint_summary(task)
    state = replace(
        running,
        status=outcome.status,
        exit_code=outcome.code,
        reason=outcome.reason,
        cause=outcome.cause,
        error_tail=list(outcome.error_tail),
        ended=now_iso(),
        checkpoint=checkpoint,
        result=result,
        result_note=note or None,
        metric=metric_summary(checkpoint, result),
    )
    lost = _lost(lease)
    if lost:  # paused past the run lease: another runner owns the task and its records now
        _say(f"{task.task_id}: not recording this attempt's end: {lost}")
    elif _stale(task, generation):  # a newer submission took over while this one ran: its record wins
        task.append_run_event(
            JournalEvent(
                STALE_EXIT, attempt=attempt, exit_code=outcome.code, generation=generation, extras=ident
            )
        )
    else:
        task.write_state(state)
        task.append_run_event(
            JournalEvent(
                EXIT,
                attempt=attempt,
                exit_code=outcome.code,
                status=outcome.status,
                reason=outcome.reason,
                cause=outcome.cause,  # why it ended (candle_restart.coordinator.causes)
                ckpt=commit_key(checkpoint) or progress_key(task.ckpts, None, command),  # any progress?
                generation=generation,
                extras=_end_extras(task, running, ident, outcome),
            )
        )
    _say(f"{task.task_id} attempt {attempt}: {outcome.status} (exit {outcome.code}): {outcome.reason}")
