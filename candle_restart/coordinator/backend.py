"""The backend interface: submit a task, and say whether a submission is alive.

A backend turns "run this task directory (generation g)" into a scheduler
submission and answers, for a recorded submission, one of:

* ``pending``: accepted, not started (a queued Slurm job);
* ``running``: alive;
* ``ended``: gone; how it ended is in the task's ``state.json``;
* ``unknown``: this backend cannot tell from here (a process on another host).

A `Submission` is plain JSON so it can be journaled and read back by any
coordinator.  Backends: `candle_restart.coordinator.local.LocalBackend`
(detached child processes); Parsl and Slurm plug into the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from candle_restart.task.process import Liveness
from candle_restart.task.runner import GENERATION_ENV
from candle_restart.task.taskdir import TaskDir

__all__ = ["GENERATION_ENV", "Backend", "Liveness", "Submission"]


@dataclass(frozen=True)
class Submission:
    """What a backend returns from submit; ``data`` is backend-specific (pid, job id, ...)."""

    backend: str
    generation: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "generation": self.generation, **self.data}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Submission:
        data = {k: v for k, v in raw.items() if k not in ("backend", "generation")}
        return cls(str(raw.get("backend")), int(raw.get("generation", 0)), data)


class Backend(Protocol):
    """What the coordinator needs from a scheduler."""

    name: str

    def submit(self, task: TaskDir, generation: int) -> Submission:
        """Start the task runner on ``task`` with ``CANDLE_RESTART_GENERATION=generation``."""
        ...

    def liveness(self, submission: Submission) -> Liveness:
        """Whether a submission this backend made (maybe in another process) is alive."""
        ...
