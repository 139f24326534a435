"""`Pacer`: when to take a mid-epoch checkpoint, and when to stop before the walltime.

A `candle_restart.candle.facade.CandleCkpt` holds one.  The framework's hooks
call it at each batch end (`batch_end`: "is a checkpoint due?") and the core
calls it at each epoch end (`epoch_end`); `CandleCkpt.save_epoch` reports
what each checkpoint cost (`saving`, `saved`, `committed`) and
`CandleCkpt.wait_for_commit` the time training waited for one (`waited`).
From those measurements it decides two things, and logs why:

* **Interval** (``ckpt_save_batches``, ``ckpt_overhead_target``,
  ``ckpt_save_seconds``): a checkpoint every ``ckpt_save_batches`` batches;
  with ``ckpt_overhead_target`` the interval is chosen by
  `candle_restart.ckpt.interval.choose_interval` from the mean time training
  was blocked per checkpoint (an asynchronous commit's cost shows up as the
  next checkpoint's wait for it, so single values swing) and the time per
  batch, and is never shorter than ``ckpt_save_batches``.  Time over the
  target's share (the first, measuring checkpoint) stretches the next
  interval; time under it is not spent on more frequent checkpoints; ``ckpt_save_seconds`` then never checkpoints
  more often than the target allows.  Before any checkpoint has been measured
  the first one comes after ``ckpt_save_batches`` batches (`PROBE_BATCHES`
  when unset).  `overhead` is the measured fraction of training time blocked
  in checkpoints so far.
* **Halt** (``ckpt_halt_seconds``, ``ckpt_walltime``, ``ckpt_halt_at``, the
  scheduler's end): at the first check where
  `candle_restart.runtime.deadline.should_halt` says the time left is within the
  margin (the slowest commit of this run, plus with two tiers its slowest
  drain to the shared tier, times `HALT_FACTOR`, plus ``ckpt_halt_seconds`` (unset: the
  small `candle_restart.runtime.deadline.HALT_FLOOR`),
  plus the longest gap between two checks), it records
  a halt in `candle_restart.runtime.preempt.REQUEST`; the caller then commits a
  checkpoint and raises `Preempted`, whose cause is ``timeout``: the same
  path a warning signal takes.

The pacer starts at the framework's ``on_train_begin`` (`start`) or at its
first check; the allocation's end is looked up once, then.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from candle_restart.ckpt.interval import choose_interval, describe
from candle_restart.ckpt.params import CkptParams
from candle_restart.ckpt.policy import SavePolicy
from candle_restart.runtime.deadline import (
    HALT_FACTOR,
    End,
    clock_text,
    find_end,
    halt_seconds,
    margin,
    measured_exit,
    should_halt,
)
from candle_restart.runtime.heartbeat import HEARTBEAT
from candle_restart.runtime.preempt import REQUEST

PROBE_BATCHES = 10  # with a target and no measurement yet: the first checkpoint after this many batches


class Pacer:
    """Measurements and decisions of one callback; see the module docstring."""

    def __init__(
        self,
        settings: CkptParams,
        log: Callable[[str], None],
        debug: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        find: Callable[[CkptParams], End | None] | None = None,
        slowest_drain: Callable[[], float] | None = None,
        first_batch: Callable[[], None] | None = None,
    ) -> None:
        """``slowest_drain``: the longest copy to the shared tier so far (two tiers; any thread's);
        ``first_batch``: called at the first `batch_end` (where startup ends)."""
        self.settings = settings
        self.first_batch = first_batch
        self.slowest_drain = slowest_drain
        self.log = log
        self.debug = debug or log
        self.clock, self.wall = clock, wall
        self._find = find or (lambda s: find_end(walltime=s.walltime, halt_at=s.halt_at))
        self.end: End | None = None
        self.exit_seconds = measured_exit()  # the task's slowest exit so far, from its runner
        self._looked = False
        self.started: float | None = None  # clock() at the start of the current span of training
        self.elapsed_before = 0.0  # seconds of training in spans already ended
        self.blocked_total = 0.0  # seconds training was blocked by checkpoints
        self.blocked_last: float | None = None  # seconds the last checkpoint blocked training
        self.checkpoints = 0
        self.slowest_commit = 0.0  # longest call-to-commit of a checkpoint of this run
        self.slowest_gap = 0.0  # longest time between two checks (batch or epoch ends)
        self.batches_since = 0  # batch ends since the last checkpoint
        self.last_save = clock()
        self._last_check: float | None = None
        self._blocked_at_check = 0.0
        self._work_seconds = 0.0  # gaps between batch ends, less the time blocked in them
        self._work_batches = 0
        self._save_started: float | None = None
        self.interval: int | None = None  # the batches chosen by the target, once measured
        self._said_probe = False
        self._logged: int | None = None  # the interval last logged at info level

    # ----- the training's clock -----------------------------------------------------------
    def start(self) -> None:
        """A span of training begins (``on_train_begin``); the first call looks up the allocation's end."""
        now = self.clock()
        HEARTBEAT.beat("start")  # the runner's watchdog: the first step (compilation) has its floor
        self.started, self._last_check = now, None
        self.last_save = now
        self.batches_since = 0
        if not self._looked:
            self._looked = True
            self.end = self._find(self.settings)
            self._say_walltime()

    def stop(self) -> None:
        """A span of training ends (``on_train_end``); logs the measured overhead."""
        HEARTBEAT.beat("idle")  # not training: the watchdog waits for the next start
        if self.started is None:
            return
        self.elapsed_before += self.clock() - self.started
        self.started = None
        if self.checkpoints:  # on the console when an interval was asked for, else in ckpt.log only
            say = self.log if self.settings.overhead_target or self.settings.save_batches else self.debug
            say(
                f"interval: {self.checkpoints} checkpoint(s) blocked training {self.blocked_total:.3f} s "
                f"of {self.elapsed():.3f} s ({self.overhead():.2%}"
                + (f", target {self.settings.overhead_target:.1%})" if self.settings.overhead_target else ")")
            )

    def elapsed(self) -> float:
        """Seconds of training so far (all spans)."""
        current = self.clock() - self.started if self.started is not None else 0.0
        return self.elapsed_before + current

    def overhead(self) -> float:
        """The fraction of training time blocked in checkpoints so far (0 before any training)."""
        total = self.elapsed()
        return self.blocked_total / total if total > 0 else 0.0

    # ----- what checkpoints cost ---------------------------------------------------------------
    def saving(self) -> float:
        """A checkpoint is being taken (the top of ``save_epoch``); returns its start for `committed`."""
        self._save_started = self.clock()
        return self._save_started

    def saved(self) -> None:
        """``save_epoch`` returned: training was blocked from `saving` until now."""
        if self._save_started is None:
            return
        blocked = self.clock() - self._save_started
        self._save_started = None
        if self.started is None:  # outside a training (a script's own loop): still a checkpoint's cost
            self.start()
        self.blocked_total += blocked
        self.blocked_last = blocked
        self.checkpoints += 1
        self.batches_since = 0
        self.last_save = self.clock()
        if self.settings.overhead_target:
            self._choose()

    def committed(self, started: float) -> None:
        """The checkpoint begun at ``started`` is committed (any thread)."""
        self.slowest_commit = max(self.slowest_commit, self.clock() - started)

    def waited(self, seconds: float) -> None:
        """Training waited ``seconds`` for a commit outside ``save_epoch`` (a stop, the end of training)."""
        if self.started is not None:
            self.blocked_total += max(seconds, 0.0)

    # ----- decisions -----------------------------------------------------------------------------
    def batch_end(self, can_save: bool = True) -> bool:
        """A batch ended: check the walltime (may record a halt); True when a checkpoint is due."""
        if self.first_batch is not None:
            first, self.first_batch = self.first_batch, None
            first()
        now = self._check(batch=True)
        HEARTBEAT.beat("step")
        self.batches_since += 1
        return SavePolicy.batch_end(
            self.settings,
            batches_since=self.batches_since,
            seconds_since=now - self.last_save,
            target_interval=self._target_interval,
            can_save=can_save,
        )

    def epoch_end(self) -> None:
        """An epoch ended (before its checkpoint): check the walltime (may record a halt)."""
        self._check(batch=False)
        HEARTBEAT.beat("epoch")

    def _check(self, batch: bool) -> float:
        now = self.clock()
        if self.started is None:
            self.start()
        if self._last_check is not None:
            gap = now - self._last_check - (self.blocked_total - self._blocked_at_check)
            self.slowest_gap = max(self.slowest_gap, gap)
            if batch:  # an epoch end's gap is validation, not a batch
                self._work_seconds += max(gap, 0.0)
                self._work_batches += 1
        self._last_check, self._blocked_at_check = now, self.blocked_total
        self._maybe_halt()
        return now

    def _maybe_halt(self) -> None:
        if self.end is None or REQUEST.requested or not self.settings.save_interval:
            return
        now = self.wall()
        commit = self.slowest_commit + (self.slowest_drain() if self.slowest_drain else 0.0)
        args = (commit, HALT_FACTOR, self._fixed(), self.slowest_gap)
        if not should_halt(now, self.end.time, *args):
            return
        REQUEST.halt(f"the allocation ends at {clock_text(self.end.time)} ({self.end.source})")
        self.log(
            f"walltime: halting now, {self.end.time - now:.1f} s before the allocation ends at "
            f"{clock_text(self.end.time)} ({self.end.source}): margin {margin(*args):.1f} s = {self._why()}"
        )

    def _why(self) -> str:
        commit = f"slowest commit {self.slowest_commit:.3f} s"
        if self.slowest_drain is not None:  # two tiers: the final checkpoint is drained too
            commit = f"({commit} + slowest drain {self.slowest_drain():.3f} s)"
        halt, step = self._fixed(), self.slowest_gap
        return f"{commit} x {HALT_FACTOR:g} + {halt:g} s + longest step {step:.3f} s"

    def _fixed(self) -> float:
        return halt_seconds(self.settings.halt_seconds, self.exit_seconds)

    def _say_walltime(self) -> None:
        if self.end is None:
            self.debug(
                "walltime: no allocation end known (no scheduler limit, ckpt_walltime or ckpt_halt_at)"
            )
            return
        where = f"walltime: allocation ends at {clock_text(self.end.time)} (from {self.end.source})"
        if not self.settings.save_interval:
            self.log(f"{where}; checkpoints are disabled, so no halt before it")
            return
        first = margin(self.slowest_commit, HALT_FACTOR, self._fixed())
        self.log(
            f"{where}; halting at {clock_text(self.end.time - first)} or earlier: the end less "
            f"(slowest commit x {HALT_FACTOR:g} + {self._fixed():g} s + longest step), "
            "measured as training goes"
        )

    # ----- the interval ------------------------------------------------------------------------
    def per_batch(self) -> float:
        """Seconds per batch measured so far, without checkpoints (0 before two checks)."""
        return self._work_seconds / self._work_batches if self._work_batches else 0.0

    def _target_interval(self) -> int:
        if self.interval is not None:
            return self.interval
        probe = self.settings.save_batches or PROBE_BATCHES
        if not self._said_probe:
            self._said_probe = True
            self.log(
                f"interval: first checkpoint after {probe} batches, to measure its cost "
                f"(target {self.settings.overhead_target:.1%})"
            )
        return probe

    def _choose(self) -> None:
        per_batch = self.per_batch()
        if not self.checkpoints or per_batch <= 0:
            return
        target = self.settings.overhead_target
        blocked = self.blocked_total / self.checkpoints
        debt = max(self.blocked_total - target * self.elapsed(), 0.0)
        chosen = choose_interval(blocked, per_batch, target, debt, minimum=max(1, self.settings.save_batches))
        self.interval = chosen
        line = describe(chosen, blocked, per_batch, target, debt)
        if self._logged is None or not 0.8 <= chosen / self._logged <= 1.25:  # news: to the console
            self._logged = chosen
            self.log(line)
        else:
            self.debug(line)
