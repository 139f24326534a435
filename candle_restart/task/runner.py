"""The task runner: one task directory in, one exit code out.

``candle-restart run TASK_DIR`` (or ``python -m candle_restart.task TASK_DIR``):

1. appends ``start`` to the journal (attempt, host, pid, Slurm job/array ids,
   ``SLURM_RESTART_COUNT``) and writes ``state.json`` = running;
2. validates ``task.json`` and the checkpoint gParameters (``ckpt_directory``
   is always the task's ``ckpts/``; ``output_dir`` defaults to ``output/``);
3. arms the preemption signals, then runs the training, with its stdout and
   stderr in ``logs/attempt-NNN.{out,err}``:

   * ``entry`` ``pkg.mod:func``: imported and called in this process with the
     gParameters (CANDLE's ``run(gParameters)``); the callback sees the
     signal at the next batch end, commits and raises `Preempted`;
   * ``command``: run as a child with ``--key value`` arguments (one argv
     item each: no shell ever sees a value); the signals are forwarded;

4. writes ``state.json`` (status, exit code, reason, the error's last lines,
   the newest checkpoint, the entry's return value as ``result`` and the ``metric``,
   see `candle_restart.task.result`) and appends ``exit`` to the journal.

A directory without ``task.json`` is not a task: exit 2, nothing written.

The runner holds the task's run lease (``.run.lock``, see
`candle_restart.ckpt.lease`) for its whole life, whether a backend started it
or a user did by hand: a second runner of a live task does not train, writes
nothing into ``state.json``, journals ``run_refused`` and exits 3.

Exit codes (DESIGN): 0 completed, 75 stopped on a signal after committing a
checkpoint (resume me), 1 the training raised an error, 2 bad input, 3 not
run because another runner of the task is alive.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, cast

from candle_restart.ckpt import CkptLayout, Found, find_restart, parse_params
from candle_restart.ckpt.envparams import with_environment
from candle_restart.ckpt.errors import (
    CheckpointIOError,
    CkptError,
    CorruptCheckpointError,
    NoCheckpointError,
    ParamError,
)
from candle_restart.ckpt.info import commit_key, writer_identity
from candle_restart.ckpt.lease import Lease, LeaseBusy, drop_all_shared
from candle_restart.ckpt.preempt import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_COMPLETED,
    EXIT_RESUME,
    EXIT_TRAINING_ERROR,
    REQUEST,
    Preempted,
    arm,
    armed_signals,
)
from candle_restart.task.process import process_start
from candle_restart.task.result import jsonable, metric_summary
from candle_restart.task.taskdir import TaskDir, TaskError, TaskSpec, now_iso

# Errors that a retry cannot fix: wrong parameters, a task.json or checkpoint that does not fit.
BAD_INPUT_ERRORS = (ParamError, TaskError, NoCheckpointError, CorruptCheckpointError)
GENERATION_ENV = "CANDLE_RESTART_GENERATION"  # set by the coordinator's backends on each submission
# A command run after an exit 75 has been recorded (the Slurm backend's self-requeue sets it to
# `scontrol requeue JOB`): one allocation request then carries the task to its end.
ON_PREEMPT_ENV = "CANDLE_RESTART_ON_PREEMPT"
STATUS_BY_CODE = {EXIT_COMPLETED: "completed", EXIT_RESUME: "preempted", EXIT_BAD_INPUT: "bad_input"}
TAIL_LINES = 20


@dataclass
class Outcome:
    code: int
    reason: str
    error_tail: list[str] = field(default_factory=list)
    result: Any = None  # what the entry returned (raw; converted by `jsonable` when recorded)

    @property
    def status(self) -> str:
        return STATUS_BY_CODE.get(self.code, "failed")


def _say(message: str) -> None:
    print(f"candle-restart run: {message}", file=sys.stderr, flush=True)


def task_params(spec: TaskSpec, task: TaskDir) -> dict[str, Any]:
    """The gParameters the training gets: the task's, with its checkpoint and output dirs."""
    params = dict(spec.params)
    params["ckpt_directory"] = str(task.ckpts)
    params.setdefault("output_dir", str(task.path / "output"))
    return params


def cli_args(params: dict[str, Any]) -> list[str]:
    """``--key=value`` items, one argv item each (never through a shell)."""
    args: list[str] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "True" if value else "False"
        elif isinstance(value, (list, dict)):
            text = json.dumps(value)
        else:
            text = str(value)
        args.append(f"--{key}={text}")  # one item: a value starting with "-" stays a value
    return args


@contextlib.contextmanager
def _output_to(out: Path, err: Path) -> Iterator[None]:
    """Send this process's fds 1 and 2 (Python's and C's writes alike) to the attempt's log files."""
    out.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(out, "ab") as fo, open(err, "ab") as fe:
        os.dup2(fo.fileno(), 1)
        os.dup2(fe.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@contextlib.contextmanager
def _releasing_writer_leases() -> Iterator[None]:
    """When the training returns, its checkpoint writer leases go with it (another runner may write)."""
    try:
        yield
    finally:
        drop_all_shared()


def _import_entry(entry: str, where: str) -> Callable[[dict[str, Any]], Any]:
    module_name, _, attr = entry.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise TaskError(where, "entry", f"cannot import {entry!r}: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise TaskError(where, "entry", f"{entry!r} is not callable")
    return cast(Callable[[dict[str, Any]], Any], target)


def _run_entry(spec: TaskSpec, params: dict[str, Any], task: TaskDir, attempt: int) -> Outcome:
    assert spec.entry is not None
    with _output_to(*task.log_paths(attempt)), _releasing_writer_leases():
        func = _import_entry(spec.entry, str(task.task_file))
        try:
            returned = func(params)
        except Preempted as exc:
            return Outcome(EXIT_RESUME, str(exc))
        except SystemExit as exc:
            code = (
                EXIT_COMPLETED
                if exc.code is None
                else exc.code
                if isinstance(exc.code, int)
                else EXIT_TRAINING_ERROR
            )
            return Outcome(
                code if code in STATUS_BY_CODE else EXIT_TRAINING_ERROR, f"the training exited {code}"
            )
        except BAD_INPUT_ERRORS as exc:
            print(f"candle-restart: {exc}", file=sys.stderr)
            return Outcome(EXIT_BAD_INPUT, str(exc))
        except CheckpointIOError as exc:  # transient I/O on the shared filesystem: a retry may work
            print(f"candle-restart: {exc}", file=sys.stderr)
            return Outcome(EXIT_TRAINING_ERROR, str(exc))
        except BaseException as exc:  # every training error is reported; none escapes the runner
            traceback.print_exc()
            tail = traceback.format_exc().rstrip().splitlines()[-TAIL_LINES:]
            return Outcome(EXIT_TRAINING_ERROR, f"{type(exc).__name__}: {exc}", tail)
    return Outcome(EXIT_COMPLETED, "the training returned", result=returned)


def _tail(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").rstrip().splitlines()[-TAIL_LINES:]
    except OSError:
        return []


def _run_command(spec: TaskSpec, params: dict[str, Any], task: TaskDir, attempt: int) -> Outcome:
    assert spec.command is not None
    argv = [*spec.command, *cli_args(params)]
    out, err = task.log_paths(attempt)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CANDLE_RESTART_TASK_DIR": str(task.path), "CANDLE_RESTART_ATTEMPT": str(attempt)}
    with open(out, "ab") as fo, open(err, "ab") as fe:
        try:
            proc = subprocess.Popen(argv, stdout=fo, stderr=fe, cwd=task.path, env=env)
        except OSError as exc:
            raise TaskError(
                str(task.task_file), "command", f"cannot run {argv[0]!r}: {exc.strerror}"
            ) from None
        forwarded: list[int] = []

        def forward(signum: int, _frame: FrameType | None) -> None:
            forwarded.append(signum)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in armed_signals()}
        if REQUEST.requested and REQUEST.signum is not None:  # arrived before the child existed
            forward(REQUEST.signum, None)
        try:
            rc = proc.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if rc in STATUS_BY_CODE:
        return Outcome(rc, f"the command exited {rc}", _tail(err) if rc == EXIT_BAD_INPUT else [])
    if rc < 0:
        name = signal.Signals(-rc).name
        if -rc in forwarded and _newest_checkpoint(task) is not None:
            return Outcome(EXIT_RESUME, f"the command died of the forwarded {name}; a checkpoint exists")
        return Outcome(EXIT_TRAINING_ERROR, f"the command was killed by {name}", _tail(err))
    return Outcome(EXIT_TRAINING_ERROR, f"the command exited {rc}", _tail(err))


def _newest_checkpoint(task: TaskDir) -> Found | None:
    """The checkpoint a restart would take, or None (also when it cannot be read just now)."""
    try:
        return find_restart(CkptLayout.at(task.ckpts), False, lambda _m: None, patience=(0.1, 0.5))
    except CkptError:
        return None


def _checkpoint_summary(task: TaskDir) -> dict[str, Any] | None:
    found = _newest_checkpoint(task)
    if found is None:
        return None
    info = found.info
    return {
        "dir": found.path.name,
        "epoch": info["epoch"],
        "epochs": info.get("epochs"),
        "complete": info.get("complete"),
        "position": info.get("position"),
        "best_metric_last": info.get("best_metric_last"),
        "best_epoch": info.get("best_epoch"),
        "save_best_metric": info.get("save_best_metric"),
        "best_mode": info.get("best_mode"),
        "timestamp": info.get("timestamp"),
    }


def _on_preempt(task: TaskDir, command: str) -> None:
    """Run the on-preempt hook (no shell); journal what it did."""
    import shlex

    try:
        proc = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120)
        result = {"exit_code": proc.returncode, "error": proc.stderr.strip()[-300:]}
    except (OSError, subprocess.TimeoutExpired) as exc:
        result = {"exit_code": None, "error": str(exc)}
    task.append_run_event({"event": "on_preempt", "command": command, **result})
    _say(f"{task.task_id}: on-preempt hook {command!r} exited {result['exit_code']}")


def _generation() -> int:
    try:
        return int(os.environ.get(GENERATION_ENV, "0"))
    except ValueError:
        return 0


def _stale(task: TaskDir, generation: int) -> bool:
    """True when the journal records a submission newer than ``generation`` (0: run by hand, never stale)."""
    if generation == 0:
        return False
    newest = max(
        (e.get("generation", 0) for e in task.read_journal() if e.get("event") == "submit_intent"), default=0
    )
    return isinstance(newest, int) and newest > generation


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
            task.append_journal({"event": "run_refused", "generation": _generation(), "holder": holder})
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
        return _run_holding_lease(task, lease)
    finally:
        lease.release()


def _run_holding_lease(task: TaskDir, lease: Lease) -> int:
    generation = _generation()
    if _stale(task, generation):
        task.append_run_event({"event": "stale_start", "generation": generation, **writer_identity()})
        _say(f"{task.task_id}: submission {generation} was superseded by a newer one; not running")
        return EXIT_COMPLETED
    attempt = task.attempts() + 1
    ident = {**writer_identity(), "pid_start": process_start(os.getpid()), "generation": generation}
    started = now_iso()
    task.append_run_event({"event": "start", "attempt": attempt, **ident})
    task.write_state({"status": "running", "attempt": attempt, "started": started, **ident})

    def disarm() -> None:
        pass

    try:
        spec = task.load_spec()
        params = task_params(spec, task)
        settings = parse_params(with_environment(params), where=f"{task.task_file}: params")
        disarm = arm(signal.Signals[f"SIG{name}"] for name in settings.signals)
        run = _run_entry if spec.entry else _run_command
        outcome = run(spec, params, task, attempt)
    except CkptError as exc:
        outcome = Outcome(EXIT_BAD_INPUT, str(exc))
    try:  # still armed: a late signal (Slurm's TERM after USR1) cannot kill the recording
        result, note = jsonable(outcome.result)
        checkpoint = _checkpoint_summary(task)
        state = {
            "status": outcome.status,
            "attempt": attempt,
            "exit_code": outcome.code,
            "reason": outcome.reason,
            "error_tail": outcome.error_tail,
            "started": started,
            "ended": now_iso(),
            **ident,
            "checkpoint": checkpoint,
            "result": result,
            **({"result_note": note} if note else {}),
            "metric": metric_summary(checkpoint, result),
        }
        lost = _lost(lease)
        if lost:  # paused past the run lease: another runner owns the task and its records now
            _say(f"{task.task_id}: not recording this attempt's end: {lost}")
        elif _stale(task, generation):  # a newer submission took over while this one ran: its record wins
            task.append_run_event({"event": "stale_exit", "attempt": attempt, "exit_code": outcome.code, **ident})
        else:
            task.write_state(state)
            task.append_run_event(
                {
                    "event": "exit",
                    "attempt": attempt,
                    "exit_code": outcome.code,
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "ckpt": commit_key(checkpoint),  # did this attempt commit anything newer?
                    **ident,
                }
            )
        _say(f"{task.task_id} attempt {attempt}: {outcome.status} (exit {outcome.code}): {outcome.reason}")
        if outcome.code == EXIT_RESUME and os.environ.get(ON_PREEMPT_ENV):
            _on_preempt(task, os.environ[ON_PREEMPT_ENV])
    finally:
        disarm()
        REQUEST.clear()  # the request was served by this run
    return outcome.code
