"""What to do with a classified task: the restart policy, as a pure function.

* ``new`` -> submit; ``queued``/``running``/``completed`` -> nothing;
* ``preempted`` -> resubmit from ``ckpts/last``, until ``max_preemptions``
  (a task that is preempted forever, or crash-loops on signals, stops);
* ``failed`` -> resubmit while fewer than ``max_failures`` failures, each
  after ``backoff_seconds * 2**(failures-1)``; bad input is never retried;
* a ``retry_requested`` event (``resume --retry-failed``) restarts the counts of failures
  and preemptions, and a failed task (bad input too) is resubmitted at once;
* ``cancelled`` (the scheduler says its user cancelled it) -> nothing, unless
  ``include_cancelled``;
* ``corrupt`` -> report; with ``restart_corrupt``, set ``ckpts/`` aside
  (never deleted) and resubmit from scratch;
* a submission whose outcome was never recorded (its coordinator died) is
  reconciled after ``reconcile_grace`` seconds, never blindly repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from candle_restart.coordinator.states import TaskStatus

Action = Literal["submit", "reconcile", "record_lost", "wait", "none", "give_up", "report"]


@dataclass(frozen=True)
class Policy:
    max_failures: int = 2
    max_preemptions: int = 50
    backoff_seconds: float = 30.0
    restart_corrupt: bool = False
    reconcile_grace: float = 60.0
    include_cancelled: bool = False


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    from_scratch: bool = False


def _age(iso: str | None, now: datetime) -> float:
    if not iso:
        return float("inf")
    try:
        return (now - datetime.fromisoformat(iso)).total_seconds()
    except (ValueError, TypeError):  # garbled, or a time without its UTC offset
        return float("inf")


def decide(status: TaskStatus, policy: Policy, now: datetime | None = None) -> Decision:
    """The action for ``status`` under ``policy`` (see the module docstring)."""
    now = now or datetime.now(timezone.utc)
    if status.pending_intent is not None:
        if _age(status.intent_time, now) < policy.reconcile_grace:
            return Decision("none", f"submission {status.pending_intent} may be in flight")
        return Decision("reconcile", f"submission {status.pending_intent} has no recorded outcome")
    if status.extra.get("runner_lost"):
        return Decision("record_lost", status.reason)
    state = status.state
    if state == "new":
        return Decision("submit", "new task", from_scratch=True)
    if state in ("queued", "running"):
        return Decision("none", status.reason)
    if state == "completed":
        return Decision("none", "completed")
    if state == "preempted":
        if status.preemptions >= policy.max_preemptions:
            return Decision("give_up", f"preempted {status.preemptions} times (cap {policy.max_preemptions})")
        return Decision("submit", f"resume from ckpts/last ({status.reason})")
    if state == "cancelled":
        if policy.include_cancelled:
            return Decision("submit", f"resubmitting a cancelled task on request ({status.reason})")
        return Decision("none", status.reason)
    if state == "corrupt":
        if policy.restart_corrupt:
            return Decision(
                "submit", "corrupt checkpoints set aside; restarting from scratch", from_scratch=True
            )
        return Decision("report", status.reason)
    if status.retry_requested:  # `resume --retry-failed`: no backoff, the budgets start again
        return Decision("submit", f"retry requested after: {status.reason}")
    if not status.retryable:
        return Decision("give_up", status.reason)
    if status.failures >= policy.max_failures:
        return Decision(
            "give_up", f"failed {status.failures} times (cap {policy.max_failures}): {status.reason}"
        )
    wait = policy.backoff_seconds * 2 ** max(status.failures - 1, 0) - _age(status.last_exit_time, now)
    if wait > 0:
        return Decision("wait", f"backing off {wait:.0f} s after failure {status.failures}")
    return Decision("submit", f"retry {status.failures + 1} of {policy.max_failures} after: {status.reason}")
