"""When the allocation ends, and when to stop so that a last checkpoint still commits.

Many clusters send a job no warning before its walltime (Slurm sends one only
with ``--signal`` or where the admin set ``preempt_send_user_signal``), so the
training must know the end itself and stop in time, as LLNL SCR does with
``SCR_HALT_SECONDS``.  This module is pure apart from `find_end`'s one
scheduler query; the callback (`candle_restart.ckpt.pacing`) calls it.

`find_end` looks once, at the start of training, and takes the earliest of:

* ``ckpt_halt_at``: an ISO time given by the user (no zone: local time);
* ``ckpt_walltime``: a duration given by the user, counted from when this
  process loaded ``candle_restart`` (`PROCESS_START`);
* Slurm: ``SLURM_JOB_END_TIME`` (epoch seconds, Slurm 23.02 and later) where
  set, else one ``squeue -h -j $SLURM_JOB_ID -o %e`` (``scontrol show job``
  if squeue fails);
* PBS/Torque: ``PBS_WALLTIME`` (seconds or ``HH:MM:SS``) from `PROCESS_START`.

`should_halt` is the rule: stop at the first check where the time left is
no more than the margin, ``slowest_commit * factor + halt_seconds`` plus the
time until the next check (``next_step``).  ``slowest_commit`` is the
longest a checkpoint of this run took from the call to its commit (with two
tiers plus the slowest drain to the shared tier), so the margin grows with the
model and the filesystem, not with a guess.  ``halt_seconds`` is
``ckpt_halt_seconds`` when given (an override), else the larger of `HALT_FLOOR`
and `HALT_FACTOR` times the slowest exit (from the stop to the process's end:
unwinding, the interpreter's and the framework's teardown) of the task's earlier
attempts, which the task runner measures and passes in ``CANDLE_RESTART_EXIT_SECONDS``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from candle_restart.runtime.envvars import EXIT_SECONDS_ENV, PBS_WALLTIME, SLURM_JOB_END_TIME, SLURM_JOB_ID

PROCESS_START = time.time()  # candle_restart.ckpt is loaded at the start of a run (the runner, the callback)
HALT_FACTOR = 3.0  # the margin covers this many of the slowest commit so far
HALT_FLOOR = 5.0  # seconds added to the measured margin when ckpt_halt_seconds is not given


def halt_seconds(given: float | None, exit_seconds: float = 0.0) -> float:
    """The fixed part of the margin: ``ckpt_halt_seconds`` when given, else the larger of
    `HALT_FLOOR` and `HALT_FACTOR` x ``exit_seconds`` (the slowest measured exit)."""
    return max(HALT_FLOOR, HALT_FACTOR * max(exit_seconds, 0.0)) if given is None else given


def measured_exit(env: Mapping[str, str] | None = None) -> float:
    """``CANDLE_RESTART_EXIT_SECONDS`` (seconds >= 0, under an hour), else 0."""
    raw = (os.environ if env is None else env).get(EXIT_SECONDS_ENV, "")
    try:
        seconds = float(raw)
    except ValueError:
        return 0.0
    return seconds if 0.0 <= seconds < 3600.0 else 0.0
UNLIMITED_DAYS = 300  # Slurm shows a job without a time limit as ending 365 days after its start

_NUMBER = re.compile(r"^\d+(\.\d*)?$")


def parse_duration(text: str | float | int) -> float:
    """Seconds in a walltime: a number of seconds, ``MM:SS``, ``HH:MM:SS`` or ``D-HH:MM:SS``.

    ValueError (one line) for anything else, a negative or an infinite value.
    """
    wrong = ValueError(f"expected seconds or HH:MM:SS, got {text!r}")
    if isinstance(text, bool):
        raise wrong
    try:
        if isinstance(text, (int, float)):
            seconds = float(text)
        else:
            raw = str(text).strip()
            days, dash, rest = raw.partition("-")
            if not dash:
                days, rest = "0", raw
            fields = rest.split(":")
            if not days.isdecimal() or len(fields) > 3 or not all(_NUMBER.fullmatch(f) for f in fields):
                raise wrong
            if dash:  # Slurm's D-HH[:MM[:SS]]: the first field after the day is hours
                fields += ["0"] * (3 - len(fields))
            seconds = 0.0
            for field in fields:  # [[HH:]MM:]SS
                seconds = seconds * 60 + float(field)
            seconds += int(days) * 86400.0
    except (OverflowError, ValueError):
        raise wrong from None
    if not 0 <= seconds < math.inf:
        raise wrong
    return seconds


def parse_time(text: str | float | int) -> float:
    """Epoch seconds of an ISO time (``2026-01-31T18:00:00``, with or without a zone; none: local)."""
    try:
        return datetime.fromisoformat(str(text).strip()).timestamp()
    except ValueError:
        raise ValueError(f"expected an ISO time such as 2026-01-31T18:00:00, got {text!r}") from None


@dataclass(frozen=True)
class End:
    """When the allocation ends (epoch seconds) and where that came from (for the log)."""

    time: float
    source: str


Runner = Callable[[list[str]], str | None]


def run_command(argv: list[str]) -> str | None:
    """stdout of ``argv``, or None when it cannot run, fails or takes over 10 s."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def slurm_end(env: Mapping[str, str], run: Runner = run_command) -> End | None:
    """The end of this Slurm job, or None outside Slurm or without a time limit."""
    raw = env.get(SLURM_JOB_END_TIME)
    if raw:
        try:
            return End(float(raw), SLURM_JOB_END_TIME)
        except ValueError:
            pass
    job = env.get(SLURM_JOB_ID)
    if not job:
        return None
    out = run(["squeue", "-h", "-j", job, "-o", "%e"])
    if out is not None and out.strip():
        return _slurm_time(out.strip().splitlines()[0], "squeue")
    out = run(["scontrol", "show", "job", job])
    found = re.search(r"\bEndTime=(\S+)", out or "")
    return _slurm_time(found.group(1), "scontrol show job") if found else None


def _slurm_time(text: str, source: str) -> End | None:
    """Slurm prints local times without a zone, or ``Unknown``/``N/A`` when there is no limit.

    A job without a limit (partition ``MaxTime=INFINITE``) shows an end a year after its
    start: an end more than `UNLIMITED_DAYS` away counts as none.
    """
    try:
        end = datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None
    return None if end - time.time() > UNLIMITED_DAYS * 86400 else End(end, source)


def find_end(
    env: Mapping[str, str] | None = None,
    walltime: float | None = None,
    halt_at: float | None = None,
    run: Runner = run_command,
    start: float = PROCESS_START,
) -> End | None:
    """The earliest known end of this allocation (see the module docstring), or None."""
    env = os.environ if env is None else env
    found: list[End] = []
    if halt_at is not None:
        found.append(End(halt_at, "ckpt_halt_at"))
    if walltime is not None:
        found.append(End(start + walltime, "ckpt_walltime"))
    slurm = slurm_end(env, run)
    if slurm is not None:
        found.append(slurm)
    pbs = env.get(PBS_WALLTIME)
    if pbs:
        with contextlib.suppress(ValueError):
            found.append(End(start + parse_duration(pbs), PBS_WALLTIME))
    return min(found, key=lambda e: e.time) if found else None


def margin(slowest_commit: float, factor: float, halt_seconds: float, next_step: float = 0.0) -> float:
    """Seconds before the end at which to stop: ``slowest_commit * factor + halt_seconds + next_step``."""
    return max(slowest_commit, 0.0) * factor + max(halt_seconds, 0.0) + max(next_step, 0.0)


def should_halt(
    now: float,
    end: float | None,
    slowest_commit: float,
    factor: float,
    halt_seconds: float,
    next_step: float = 0.0,
) -> bool:
    """True when stopping now is the last safe chance: the time left is within the margin.

    ``next_step`` is how long until the next chance to check (a batch); with
    no ``end`` there is never a reason to halt.
    """
    if end is None:
        return False
    return end - now <= margin(slowest_commit, factor, halt_seconds, next_step)


def clock_text(when: float) -> str:
    """A local time for the log, to the second."""
    return datetime.fromtimestamp(when).isoformat(timespec="seconds")
