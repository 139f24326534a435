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

Beyond `Backend`, a backend declares what more it can do by subclassing the
capability protocols below (the coordinator asks ``isinstance``, never
``getattr``):

* `BatchSubmit`: submit many tasks as one scheduler request (a job array);
* `Reconcile`: find a submission whose coordinator died before journaling it;
* `FinalState`: the scheduler's own word on how an ended job ended;
* `AvoidHosts`: keep the next submissions off named hosts (Slurm's ``--exclude``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from candle_restart.runtime.envvars import GENERATION_ENV
from candle_restart.task.process import Liveness
from candle_restart.task.taskdir import TaskDir

__all__ = [
    "GENERATION_ENV",
    "AvoidHosts",
    "Backend",
    "BatchSubmit",
    "FinalState",
    "Liveness",
    "Reconcile",
    "Submission",
]


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
    """What the coordinator needs from a scheduler.

    ``reconcile_grace``: seconds after which an intent with no recorded outcome is taken as
    never carried out (or looked up, for a `Reconcile` backend); the coordinator uses the
    smaller of this and its policy's.
    """

    name: str
    reconcile_grace: float

    def submit(self, task: TaskDir, generation: int) -> Submission:
        """Start the task runner on ``task`` with ``CANDLE_RESTART_GENERATION=generation``."""
        ...

    def liveness(self, submission: Submission) -> Liveness:
        """Whether a submission this backend made (maybe in another process) is alive."""
        ...


@runtime_checkable
class BatchSubmit(Protocol):
    """A backend that submits many tasks as one scheduler request (a Slurm job array)."""

    def submit_many(self, items: Sequence[tuple[TaskDir, int]], batch: str) -> list[Submission]:
        """Submit ``items`` (task, generation) as one request named ``batch``; one Submission
        per item, in order.  Raises on failure, having submitted nothing the caller will see."""
        ...


@runtime_checkable
class Reconcile(Protocol):
    """A backend that can find a submission its coordinator made but never journaled."""

    def find(self, task: TaskDir, generation: int, batch: str | None) -> Submission | None:
        """The submission of ``task`` for ``generation`` (in request ``batch``), or None if
        the scheduler has no record of one."""
        ...


@runtime_checkable
class FinalState(Protocol):
    """A backend whose scheduler records how a job ended (``CANCELLED``, ``TIMEOUT``, ...)."""

    def final_state(self, submission: Submission) -> str | None:
        """The scheduler's final state of an ended submission, None while alive or unknown."""
        ...


@runtime_checkable
class AvoidHosts(Protocol):
    """A backend that can keep its next submissions off named hosts (`candle_restart.coordinator.hosts`)."""

    def nodes(self) -> list[str] | None:
        """The hosts a submission may land on (a partition's nodes), by the names `avoid` takes;
        None when the scheduler cannot say (then nothing is excluded)."""
        ...

    def avoid(self, hosts: Sequence[str]) -> None:
        """Exclude ``hosts`` from every later submission of this backend object (empty: none)."""
        ...
