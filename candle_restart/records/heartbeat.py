"""``<task>/heartbeat``: the training's liveness, read by the task runner's watchdog.

The runner sets ``CANDLE_RESTART_HEARTBEAT`` to this file's path for every task (entry or
command) and removes the file before each attempt.  Any change of the file is a beat: a
``command`` may simply touch it (or rewrite it) once per step.  The checkpoint callbacks
(`candle_restart.runtime.heartbeat`) write one JSON object::

    {"n": 17, "phase": "step", "warm": true, "cause": null, "commits": 2, "commit_seconds": 0.031}

* ``n``: a counter, so every write changes the content;
* ``phase``: ``start`` (training begun, the first step not yet done: it compiles),
  ``step`` (a batch ended), ``epoch`` (an epoch ended), ``commit`` (the training waits for a
  checkpoint's commit or drain), ``idle`` (not training: after ``fit`` returned; not watched),
  ``stopped`` (it stops on its own, see ``cause``; not watched);
* ``warm``: the first epoch ended (compilation and the first validation are behind it);
* ``time``: when it was written (epoch seconds, the training's clock: the runner's, since a
  command runs on the runner's host); the runner times a command's exit from its ``stopped`` beat;
* ``commits``, ``commit_seconds``: how many waits for a commit the training has seen and the
  longest (seconds, its own clock): a commit shorter than the runner's poll is never seen by it;
* ``cause``: with ``stopped``, why the training stopped (``preempted``, ``timeout``, ``hang``):
  how a ``command``'s exit 75 says what its exit code cannot.

A file that is not such an object (a command's own touch or text) reads as a ``step`` beat
that is warm: it is still a beat.  Reading never raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

Phase = Literal["start", "step", "epoch", "commit", "idle", "stopped"]
PHASES: tuple[Phase, ...] = ("start", "step", "epoch", "commit", "idle", "stopped")
FILE_NAME = "heartbeat"
MAX_BYTES = 4096  # a bigger file is read as a plain beat


@dataclass(frozen=True)
class Beat:
    """One state of the heartbeat file (see the module docstring)."""

    phase: Phase = "step"
    warm: bool = True
    cause: str | None = None
    n: int = 0
    commits: int = 0
    commit_seconds: float = 0.0
    time: float | None = None

    @classmethod
    def from_bytes(cls, raw: bytes) -> Beat:
        """The beat in ``raw``; anything that is not our JSON object is a plain warm ``step`` beat."""
        if len(raw) > MAX_BYTES:
            return cls()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return cls()
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: object, source: str = FILE_NAME) -> Beat:
        """The beat of a parsed file (never raises: a value of another shape is a plain warm ``step`` beat;
        ``source`` is accepted for the records' common signature)."""
        if not isinstance(data, dict):
            return cls()
        phase = data.get("phase")
        cause = data.get("cause")
        n = data.get("n")
        commits = data.get("commits")
        seconds = data.get("commit_seconds")
        when = data.get("time")
        return cls(
            phase=phase if phase in PHASES else "step",
            warm=data.get("warm") is not False,
            cause=cause if isinstance(cause, str) and len(cause) <= 32 else None,
            n=n if isinstance(n, int) and not isinstance(n, bool) else 0,
            commits=commits if isinstance(commits, int) and not isinstance(commits, bool) and commits > 0 else 0,
            commit_seconds=float(seconds)
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 <= seconds < 1e9
            else 0.0,
            time=float(when) if isinstance(when, (int, float)) and not isinstance(when, bool) and when > 0 else None,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "n": self.n,
            "phase": self.phase,
            "warm": self.warm,
            "cause": self.cause,
            "commits": self.commits,
            "commit_seconds": round(self.commit_seconds, 6),
            "time": self.time,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json()).encode()
