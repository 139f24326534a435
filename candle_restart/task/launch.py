"""How a task's training is started: ``entry`` in this process, ``command`` as a child.

What a task receives (DESIGN's task directory; the README's "What a task receives"):

* gParameters: the task's ``params`` with ``ckpt_directory`` = the task's ``ckpts/`` and
  ``output_dir`` defaulting to its ``output/``, created (`task_params`, `make_default_output`).  An ``entry`` is called
  with them; a ``command`` gets them as ``--key=value`` arguments, one argv item each,
  except that with ``dir_flags: false`` the two directories are not added as flags
  (`command_argv`).
* the environment, for both forms: ``CANDLE_RESTART_CKPT_DIRECTORY`` and
  ``CANDLE_RESTART_OUTPUT_DIR`` (`candle_restart.ckpt.envparams`), ``CANDLE_RESTART_TASK_DIR``
  and ``CANDLE_RESTART_ATTEMPT``, and ``CANDLE_RESTART_HEARTBEAT``: the heartbeat file the
  runner's watchdog reads (`candle_restart.task.watchdog`; a command may touch it once per step,
  or never, which opts it out), and after a command's measured exit 75 ``CANDLE_RESTART_EXIT_SECONDS``:
  the slowest such exit of the task so far, which the next halt's margin covers (`task_environment`).
* an ``entry`` is imported with the task's ``python_path`` (the sweep YAML's folder) first
  on ``sys.path``.

A command that fails is reported by its exit code and the last non-empty line of its
stderr (`ProgramOutcome.reason`), so ``status`` shows why without opening the logs.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import cast

from candle_restart.ckpt import CkptLayout, Found, find_restart
from candle_restart.ckpt.envparams import DIRECTORY_ENV
from candle_restart.errors import (
    CheckpointIOError,
    CkptError,
    CorruptCheckpointError,
    NoCheckpointError,
    ParamError,
)
from candle_restart.records.heartbeat import FILE_NAME as HEARTBEAT_FILE
from candle_restart.records.journal import EXIT
from candle_restart.records.jsontypes import JsonObject
from candle_restart.records.taskstate import TaskStatusName
from candle_restart.runtime.envvars import ATTEMPT_ENV, EXIT_SECONDS_ENV, HEARTBEAT_ENV, TASK_DIR_ENV
from candle_restart.runtime.lease import drop_all_shared
from candle_restart.runtime.preempt import (
    EXIT_BAD_INPUT,
    EXIT_COMPLETED,
    EXIT_RESUME,
    EXIT_TRAINING_ERROR,
    REQUEST,
    Preempted,
    armed_signals,
)
from candle_restart.task.exits import death_by_forwarded
from candle_restart.task.orphans import cannot_run, guarded_argv
from candle_restart.task.taskdir import TaskDir, TaskError, TaskSpec
from candle_restart.task.watchdog import EntryWatchdog, Watcher, wait_watched

# Errors that a retry cannot fix: wrong parameters, a task.json or checkpoint that does not fit.
BAD_INPUT_ERRORS = (ParamError, TaskError, NoCheckpointError, CorruptCheckpointError)
STATUS_BY_CODE: dict[int, TaskStatusName] = {
    EXIT_COMPLETED: "completed",
    EXIT_RESUME: "preempted",
    EXIT_BAD_INPUT: "bad_input",
}
# Why an attempt ended as far as the runner knows (DESIGN's causes; node_fail, cancelled: the scheduler's).
CAUSE_BY_CODE: dict[int, str | None] = {
    EXIT_COMPLETED: None,
    EXIT_RESUME: "preempted",
    EXIT_BAD_INPUT: "bad_input",
}
STOP_CAUSES = ("preempted", "timeout", "hang")  # what a training may say of its own exit 75
TAIL_LINES = 20
REASON_CHARS = 300  # the longest stderr line a reason quotes


@dataclass
class ProgramOutcome:
    code: int
    reason: str
    error_tail: list[str] = field(default_factory=list)
    result: object = None  # what the entry returned (raw; converted by `jsonable` when recorded)
    # preempted (a signal), timeout (the callback halted before the walltime: `Preempted.cause`),
    # error, oom, bad_input; None: completed.  "": from the code.  A command's exit 75: preempted.
    cause: str | None = ""
    exit_seconds: float | None = None  # a command's exit 75: from its stop to its end (the next halt covers it)

    def __post_init__(self) -> None:
        if self.cause == "":
            self.cause = CAUSE_BY_CODE.get(self.code, "error")

    @property
    def status(self) -> TaskStatusName:
        return STATUS_BY_CODE.get(self.code, "failed")


def task_params(spec: TaskSpec, task: TaskDir) -> JsonObject:
    """The gParameters the training gets: the task's, with its checkpoint and output dirs."""
    params = dict(spec.params)
    params["ckpt_directory"] = str(task.ckpts)
    params.setdefault("output_dir", str(task.path / "output"))
    return params


def make_default_output(params: JsonObject, task: TaskDir) -> None:
    """Create the task's ``output/`` when it is the ``output_dir`` (a user's own is the training's to make)."""
    if params.get("output_dir") == str(task.path / "output"):
        with contextlib.suppress(OSError):
            (task.path / "output").mkdir(exist_ok=True)


def cli_args(params: JsonObject) -> list[str]:
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


def command_argv(spec: TaskSpec, params: JsonObject) -> list[str]:
    """The command and its ``--key=value`` items; without the two directories when ``dir_flags`` is off
    (an ``output_dir`` the task's own params set is the user's flag and stays)."""
    assert spec.command is not None
    if not spec.dir_flags:
        params = {k: v for k, v in params.items() if k not in DIRECTORY_ENV or k in spec.params}
        params.pop("ckpt_directory", None)
    return [*spec.command, *cli_args(params)]


def task_environment(params: JsonObject, task: TaskDir, attempt: int) -> dict[str, str]:
    """The variables every task gets (added to the runner's environment)."""
    env = {var: str(params[key]) for key, var in DIRECTORY_ENV.items() if params.get(key) is not None}
    heartbeat = str(task.path / HEARTBEAT_FILE)
    env = {**env, TASK_DIR_ENV: str(task.path), ATTEMPT_ENV: str(attempt), HEARTBEAT_ENV: heartbeat}
    exits = [e.extras.get("exit_seconds") for e in task.events() if e.kind == EXIT]
    slowest = max((float(s) for s in exits if isinstance(s, (int, float)) and not isinstance(s, bool)), default=None)
    return env if slowest is None else {**env, EXIT_SECONDS_ENV: f"{slowest:.3f}"}


def heartbeat_file(task: TaskDir) -> Path:
    """The task's heartbeat file (`candle_restart.records.heartbeat`)."""
    return task.path / HEARTBEAT_FILE


def _hung(outcome: ProgramOutcome, why: str) -> ProgramOutcome:
    """``outcome`` of a training the watchdog stopped: cause ``hang``, resumable (exit 75); one that
    completed all the same stays completed."""
    if outcome.code == EXIT_COMPLETED:
        return outcome
    how = "stopped with a checkpoint" if outcome.code == EXIT_RESUME else f"ended ({outcome.reason})"
    return ProgramOutcome(EXIT_RESUME, f"{why}; {how}", outcome.error_tail, cause="hang")


@contextlib.contextmanager
def _entry_context(spec: TaskSpec, env: dict[str, str]) -> Iterator[None]:
    """``python_path`` first on ``sys.path`` and ``env`` in ``os.environ`` while an entry runs; both undone."""
    saved_path, saved_env = list(sys.path), {k: os.environ.get(k) for k in env}
    sys.path[:0] = [p for p in spec.python_path if p not in sys.path]
    os.environ.update(env)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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


def _import_entry(entry: str, where: str) -> Callable[[JsonObject], object]:
    module_name, _, attr = entry.partition(":")
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise TaskError(where, "entry", f"cannot import {entry!r}: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise TaskError(where, "entry", f"{entry!r} is not callable")
    return cast(Callable[[JsonObject], object], target)


def run_entry(
    spec: TaskSpec,
    params: JsonObject,
    task: TaskDir,
    attempt: int,
    watcher: Watcher | None = None,
    abandon: Callable[[str], None] | None = None,
) -> ProgramOutcome:
    """Import and call the entry with ``params`` in this process; its output goes to the attempt's logs.

    With ``watcher``, a watchdog thread (`EntryWatchdog`) watches the heartbeat; ``abandon`` is
    what it calls when a hung training does not stop (it records the end and exits).
    """
    assert spec.entry is not None
    env = task_environment(params, task, attempt)
    dog = None
    if watcher is not None and abandon is not None and watcher.limits.factor > 0:
        dog = EntryWatchdog(
            watcher, abandon, lambda m: print(f"candle-restart run: {m}", file=sys.stderr, flush=True)
        )
    with _output_to(*task.log_paths(attempt)), _entry_context(spec, env), _releasing_writer_leases():
        if dog is not None:
            dog.start()
        try:
            outcome = _call_entry(spec, params, task)
        finally:
            if dog is not None:
                dog.done()
    return outcome if dog is None or dog.fired is None else _hung(outcome, dog.fired)


def _call_entry(spec: TaskSpec, params: JsonObject, task: TaskDir) -> ProgramOutcome:
    assert spec.entry is not None
    func = _import_entry(spec.entry, str(task.task_file))
    try:
        returned = func(params)
    except Preempted as exc:  # a signal (preempted) or the walltime (timeout): the callback says which
        return ProgramOutcome(EXIT_RESUME, str(exc), cause=exc.cause)
    except SystemExit as exc:
        code = (
            EXIT_COMPLETED
            if exc.code is None
            else exc.code
            if isinstance(exc.code, int)
            else EXIT_TRAINING_ERROR
        )
        return ProgramOutcome(
            code if code in STATUS_BY_CODE else EXIT_TRAINING_ERROR, f"the training exited {code}"
        )
    except BAD_INPUT_ERRORS as exc:
        print(f"candle-restart: {exc}", file=sys.stderr)
        return ProgramOutcome(EXIT_BAD_INPUT, str(exc))
    except CheckpointIOError as exc:  # transient I/O on the shared filesystem: a retry may work
        print(f"candle-restart: {exc}", file=sys.stderr)
        return ProgramOutcome(EXIT_TRAINING_ERROR, str(exc))
    except BaseException as exc:  # every training error is reported; none escapes the runner
        traceback.print_exc()
        tail = traceback.format_exc().rstrip().splitlines()[-TAIL_LINES:]
        cause = "oom" if isinstance(exc, MemoryError) else "error"
        return ProgramOutcome(EXIT_TRAINING_ERROR, f"{type(exc).__name__}: {exc}", tail, cause=cause)
    return ProgramOutcome(EXIT_COMPLETED, "the training returned", result=returned)


def _tail(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").rstrip().splitlines()[-TAIL_LINES:]
    except OSError:
        return []


def _why(what: str, tail: list[str]) -> str:
    """``what``, then the last non-empty stderr line (shortened), with a hint for the injected flags."""
    last = next((line.strip() for line in reversed(tail) if line.strip()), "")
    if not last:
        return what
    if len(last) > REASON_CHARS:
        last = last[: REASON_CHARS - 3] + "..."
    hint = ""
    if "unrecognized arguments" in last and any(f"--{k}" in last for k in DIRECTORY_ENV):
        hint = (
            " (the sweep key 'dir_flags: false' stops these flags; the directories are always in "
            + " and ".join(DIRECTORY_ENV.values())
            + ")"
        )
    return f"{what}: {last}{hint}"


def run_command(
    spec: TaskSpec,
    params: JsonObject,
    task: TaskDir,
    attempt: int,
    watcher: Watcher | None = None,
    abandon: Callable[[str], None] | None = None,
) -> ProgramOutcome:
    """Run the command as a child (no shell), signals forwarded; its output goes to the attempt's logs.

    With ``watcher``, its heartbeat is watched (`wait_watched`): a hung command ends with cause
    ``hang``.  An exit 75 takes its cause from what the training wrote into the heartbeat file
    (``timeout`` after its walltime halt), else ``preempted``.
    """
    assert spec.command is not None
    argv = command_argv(spec, params)
    out, err = task.log_paths(attempt)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **task_environment(params, task, attempt)}
    with open(out, "ab") as fo, open(err, "ab") as fe:
        try:  # dies with this runner; its own session, so a signal reaches its whole group
            proc = subprocess.Popen(
                guarded_argv(argv), stdout=fo, stderr=fe, cwd=task.path, env=env, start_new_session=True
            )
        except OSError as exc:
            raise TaskError(
                str(task.task_file), "command", f"cannot run {argv[0]!r}: {exc.strerror}"
            ) from None
        forwarded: list[int] = []

        def forward(signum: int, _frame: FrameType | None) -> None:
            forwarded.append(signum)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signum)

        previous = {sig: signal.signal(sig, forward) for sig in armed_signals()}
        if REQUEST.requested and REQUEST.signum is not None:  # arrived before the child existed
            forward(REQUEST.signum, None)
        try:
            rc, hung = wait_watched(
                proc, watcher, lambda m: print(f"candle-restart run: {m}", file=sys.stderr, flush=True)
            )
            ended = time.time()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if hung is not None:
        return _hung(ProgramOutcome(rc, f"the command exited {rc}" if rc >= 0 else "killed"), hung)
    if rc == EXIT_RESUME:
        said = watcher.stopped_cause if watcher is not None else None
        took = watcher.exit_seconds(ended) if watcher is not None else None
        cause = said if said in STOP_CAUSES else "preempted"
        return ProgramOutcome(rc, f"the command exited {rc}", cause=cause, exit_seconds=took)
    if rc == EXIT_COMPLETED:
        return ProgramOutcome(rc, f"the command exited {rc}")
    tail = _tail(err)
    unrunnable = cannot_run(rc, tail)
    if unrunnable:
        raise TaskError(str(task.task_file), "command", unrunnable)
    if rc == EXIT_BAD_INPUT:
        return ProgramOutcome(rc, _why(f"the command exited {rc}", tail), tail)
    died = death_by_forwarded(rc, forwarded)
    if died is not None:  # a preemption it did not handle (or got before arming): resumable all the same
        return ProgramOutcome(EXIT_RESUME, died)
    if rc < 0:
        name = signal.Signals(-rc).name
        return ProgramOutcome(EXIT_TRAINING_ERROR, _why(f"the command was killed by {name}", tail), tail)
    return ProgramOutcome(EXIT_TRAINING_ERROR, _why(f"the command exited {rc}", tail), tail)


def newest_checkpoint(task: TaskDir) -> Found | None:
    """The checkpoint a restart would take, or None (also when it cannot be read just now)."""
    try:
        return find_restart(CkptLayout.at(task.ckpts), False, lambda _m: None, patience=(0.1, 0.5))
    except CkptError:
        return None
