"""The training's side of the runner's hang watchdog: cheap beats into the heartbeat file.

`HEARTBEAT` (one per process) writes `candle_restart.records.heartbeat.Beat` into the file
named by ``CANDLE_RESTART_HEARTBEAT`` (set by the task runner; unset: every call does
nothing).  The pacer beats at each batch and epoch end (Keras and PyTorch alike), the
engine around each wait for a commit or drain, `candle_restart.runtime.preempt.Preempted`
when the training stops on its own.  Contract:

* each beat carries the count and the longest of the waits for a commit so far (a commit
  shorter than the runner's poll is otherwise never seen by it);
* a beat of the same phase is written at most every `BEAT_SECONDS` (a write is one small
  file replaced by rename, no fsync: a lost beat costs nothing but a late one);
  a change of phase is written at once;
* a beat never raises and never blocks on anything but the write itself: an unwritable
  file is given up for the rest of the process;
* the variable is read at each write, so an ``entry`` run in the runner's process
  (which sets it while the entry runs) beats too.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from candle_restart.records.heartbeat import Beat, Phase
from candle_restart.runtime.envvars import HEARTBEAT_ENV

BEAT_SECONDS = 2.0  # at most one write of the same phase this often


class Heartbeat:
    """Beats of this process (see the module docstring)."""

    def __init__(self) -> None:
        self._n = 0
        self._phase: Phase | None = None
        self._written = 0.0  # time.monotonic() of the last write
        self._warm = False
        self._broken: str | None = None  # the path that could not be written
        self._commit_began: float | None = None  # time.monotonic() when the current wait for a commit began
        self._commits = 0
        self._longest_commit = 0.0
        self._lock = threading.Lock()

    def beat(self, phase: Phase = "step") -> None:
        """Report liveness in ``phase``; throttled as the module docstring says."""
        path = os.environ.get(HEARTBEAT_ENV)
        if not path or path == self._broken:
            return
        with self._lock:
            now = time.monotonic()
            if phase == "epoch":
                self._warm = True
            if phase == "commit" and self._commit_began is None:
                self._commit_began = now
            elif phase != "commit" and self._commit_began is not None:
                self._commits += 1
                self._longest_commit = max(self._longest_commit, now - self._commit_began)
                self._commit_began = None
            if phase == self._phase and now - self._written < BEAT_SECONDS:
                return
            self._write(path, self._beat(phase, None), now)

    def _beat(self, phase: Phase, cause: str | None) -> Beat:
        return Beat(phase, self._warm, cause, self._n + 1, self._commits, self._longest_commit, time.time())

    def stopped(self, cause: str) -> None:
        """The training stops on its own (a signal, the walltime): say why, for the runner's record."""
        path = os.environ.get(HEARTBEAT_ENV)
        if not path or path == self._broken:
            return
        with self._lock:
            self._write(path, self._beat("stopped", cause), time.monotonic())

    def _write(self, path: str, beat: Beat, now: float) -> None:
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(beat.to_bytes())
            os.replace(tmp, path)
        except OSError:
            self._broken = path
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._n, self._phase, self._written = beat.n, beat.phase, now


HEARTBEAT = Heartbeat()
