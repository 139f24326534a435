"""The runner's hang watchdog: a training whose heartbeat stops is asked to stop, then killed.

The training beats into the task's heartbeat file (`candle_restart.records.heartbeat`; the
callbacks do it through `candle_restart.runtime.heartbeat`, a ``command`` may touch the file
itself).  The runner polls the file every `POLL_SECONDS` and times each change on its own
monotonic clock (never the file's time stamp).  The decision is pure: `observe` folds a
change into a `Watch`, `limit` says how long the current silence may last, `verdict` says
whether it has lasted longer.

The limit, from ``ckpt_hang_factor`` (k), ``ckpt_hang_grace`` and ``ckpt_hang_first``:

* nothing beat yet (a command that never beats has opted out), or the phase is ``idle`` or
  ``stopped``: not watched;
* ``start`` (the first step, which compiles): ``ckpt_hang_first``;
* ``step``/``epoch``: k x the longest gap seen between two step beats, plus the grace;
  no less than ``ckpt_hang_first`` until a step gap was seen and the training is warm
  (its first epoch ended: the first validation compiles too);
* ``commit`` (waiting for a commit or drain): k x the longest commit seen (by the runner, or
  reported in the beats: one shorter than a poll is seen only there), plus the grace;
  no less than ``ckpt_hang_first`` before the first commit was seen.

A slow but steady training is never stopped: its own gaps set the limit.  On a verdict the
runner sends the training its first preemption signal (a training blocked in a batch or a
commit will not serve it), waits `stop_wait` (the grace plus k x the longest commit), then
kills the process group; either way the attempt ends with cause ``hang`` (exit 75: resumable
from its last checkpoint).  ``ckpt_hang_factor`` 0 turns the watchdog off.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from candle_restart.ckpt.params import CkptParams
from candle_restart.records.heartbeat import Beat, Phase
from candle_restart.runtime.preempt import armed_signals

POLL_SECONDS = 1.0
GONE_SECONDS = 10.0  # after the kill: how long to wait for the group's last process to be reaped


@dataclass(frozen=True)
class Limits:
    """``ckpt_hang_factor`` (0: off), ``ckpt_hang_grace``, ``ckpt_hang_first`` (seconds)."""

    factor: float
    grace: float
    first: float

    @classmethod
    def of(cls, settings: CkptParams) -> Limits:
        return cls(settings.hang_factor, settings.hang_grace, settings.hang_first)


@dataclass(frozen=True)
class Watch:
    """What the runner has seen of the heartbeat (times on its monotonic clock)."""

    seen: float | None = None  # when the latest change was seen; None: no beat yet
    phase: Phase = "idle"
    warm: bool = False
    step_gaps: int = 0
    longest_step: float = 0.0
    commits: int = 0
    longest_commit: float = 0.0
    cause: str | None = None  # with phase ``stopped``: why the training stopped


def observe(watch: Watch, now: float, beat: Beat) -> Watch:
    """``watch`` after a change of the heartbeat file, seen at ``now``, holding ``beat``."""
    new = replace(
        watch,
        seen=now,
        phase=beat.phase,
        warm=beat.warm,
        cause=beat.cause,
        commits=max(watch.commits, beat.commits),
        longest_commit=max(watch.longest_commit, beat.commit_seconds),
    )
    if watch.seen is None:
        return new
    gap = max(now - watch.seen, 0.0)
    if watch.phase == "commit":  # seen by the runner too (the training's report may be late)
        return replace(new, commits=max(new.commits, 1), longest_commit=max(new.longest_commit, gap))
    if watch.phase in ("step", "epoch") and beat.phase in ("step", "epoch", "commit", "stopped"):
        return replace(new, step_gaps=watch.step_gaps + 1, longest_step=max(watch.longest_step, gap))
    return new


def limit(watch: Watch, limits: Limits) -> float | None:
    """Seconds of silence allowed in ``watch``'s phase (module docstring); None: not watched."""
    if limits.factor <= 0 or watch.seen is None or watch.phase in ("idle", "stopped"):
        return None
    if watch.phase == "start":
        return limits.first
    if watch.phase == "commit":
        allowed = limits.factor * watch.longest_commit + limits.grace
        return allowed if watch.commits else max(allowed, limits.first)
    allowed = limits.factor * watch.longest_step + limits.grace
    return allowed if watch.step_gaps and watch.warm else max(allowed, limits.first)


def verdict(watch: Watch, now: float, limits: Limits) -> str | None:
    """Why the training is hung at ``now`` (one line), or None while it is not."""
    allowed = limit(watch, limits)
    if allowed is None or watch.seen is None:
        return None
    silent = now - watch.seen
    if silent <= allowed:
        return None
    where = "waiting for a commit" if watch.phase == "commit" else f"after its last beat ({watch.phase})"
    return f"hung: no heartbeat for {silent:.0f} s {where}; the limit was {allowed:.0f} s"


def stop_wait(watch: Watch, limits: Limits) -> float:
    """Seconds between asking a hung training to stop and killing it."""
    return limits.grace + limits.factor * watch.longest_commit


class Watcher:
    """Polls one heartbeat file; `check` returns `verdict`'s reason once the training is hung."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path, self.limits = path, limits
        self.watch = Watch()
        self.beat: Beat | None = None  # the latest beat read
        self._last: tuple[int, int, bytes] | None = None

    def clear(self) -> None:
        """Remove an earlier attempt's file (before the training starts)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def read(self, now: float) -> None:
        """Fold a change of the file since the last read into the watch."""
        try:
            st = os.stat(self.path)
            with open(self.path, "rb") as f:
                raw = f.read(8192)
        except OSError:
            return
        key = (st.st_ino, st.st_mtime_ns, raw)
        if key != self._last:
            self._last = key
            self.beat = Beat.from_bytes(raw)
            self.watch = observe(self.watch, now, self.beat)

    def check(self) -> str | None:
        now = time.monotonic()
        self.read(now)
        return verdict(self.watch, now, self.limits)

    @property
    def stopped_cause(self) -> str | None:
        """Why the training said it stopped (read once more), or None."""
        self.read(time.monotonic())
        return self.watch.cause if self.watch.phase == "stopped" else None

    def exit_seconds(self, ended: float) -> float | None:
        """Seconds from the training's ``stopped`` beat to ``ended`` (epoch seconds), or None."""
        self.read(time.monotonic())
        if self.beat is None or self.beat.phase != "stopped" or self.beat.time is None:
            return None
        seconds = ended - self.beat.time
        return round(seconds, 3) if 0.0 <= seconds < 3600.0 else None


def _ask(pid: int, group: bool) -> None:
    """Send the first armed preemption signal (the training's "checkpoint and stop")."""
    signals = armed_signals()
    signum = signals[0] if signals else signal.SIGTERM
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def wait_watched(
    proc: subprocess.Popen[bytes], watcher: Watcher | None, say: Callable[[str], None]
) -> tuple[int, str | None]:
    """Wait for a ``command``'s process (group leader) under the watchdog: its exit status, and
    the hang's reason when the watchdog stopped it (asked first, its group killed after `stop_wait`)."""
    if watcher is None or watcher.limits.factor <= 0:
        return proc.wait(), None
    why = None
    while why is None:
        try:
            return proc.wait(timeout=POLL_SECONDS), None
        except subprocess.TimeoutExpired:
            why = watcher.check()
    wait = stop_wait(watcher.watch, watcher.limits)
    say(f"{why}; asking the training to checkpoint and stop (killed in {wait:.0f} s)")
    _ask(proc.pid, group=True)
    try:
        return proc.wait(timeout=wait), why
    except subprocess.TimeoutExpired:
        say("the hung training did not stop; killing its process group")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.wait()
        _wait_group_gone(proc.pid)
        return rc, why


def _wait_group_gone(pgid: int, seconds: float = GONE_SECONDS) -> None:
    """Wait until no process of group ``pgid`` is left, the orphaned ones reaped by init too (the
    next attempt takes over the writer lease only from a holder that is gone); at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)


class EntryWatchdog(threading.Thread):
    """The watchdog of an ``entry`` trained in the runner's own process (a daemon thread).

    On a verdict it signals this process (the callback then checkpoints and stops, and the
    runner records the end with cause ``hang``: `fired`); when the training has not returned
    `stop_wait` later, it calls ``abandon(reason)``, which records the end and exits the process
    (the blocked training thread cannot be ended otherwise).  `done` stops it.
    """

    def __init__(self, watcher: Watcher, abandon: Callable[[str], None], say: Callable[[str], None]) -> None:
        super().__init__(name="candle-restart-watchdog", daemon=True)
        self.watcher, self.abandon, self.say = watcher, abandon, say
        self.fired: str | None = None
        self._done = threading.Event()

    def done(self) -> None:
        self._done.set()

    def run(self) -> None:
        while not self._done.wait(POLL_SECONDS):
            why = self.watcher.check()
            if why is None:
                continue
            self.fired = why
            wait = stop_wait(self.watcher.watch, self.watcher.limits)
            self.say(f"{why}; asking the training to checkpoint and stop (ended in {wait:.0f} s)")
            _ask(os.getpid(), group=False)
            if not self._done.wait(wait):
                self.say("the hung training did not stop; recording the attempt and exiting")
                self.abandon(why)
            return
