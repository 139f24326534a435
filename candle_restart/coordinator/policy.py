"""What to do with a classified task: the restart policy, as a pure function.

* ``new`` -> submit; ``queued``/``running``/``completed``/``pruned`` (a search stopped it) -> nothing;
* ``preempted`` (stopped early, resumable) -> resubmit from ``ckpts/last``,
  within the budget of the cause of its ends (`candle_restart.coordinator.causes`):
  ``max_preemptions`` signals, ``max_timeouts`` walltimes, ``max_node_failures``
  lost runners, ``max_oom`` kills for memory, ``max_hangs`` trainings the runner's
  watchdog stopped;
* a preempted or failed task whose last ``no_progress_attempts`` ends showed no progress
  (no newer checkpoint; for a ``command`` without one, no change to its own files in its
  checkpoint directory: `candle_restart.task.progress`) is given up, whatever the causes
  ("no progress in N attempts"); progress that cannot be seen never counts as none;
* ``failed`` -> resubmit while fewer than ``max_failures`` failures, each
  after ``backoff_seconds * 2**(failures-1)`` on this host's clock (``TaskStatus.exit_age``);
  bad input is never retried;
* a ``retry_requested`` event (``resume --retry-failed``) restarts the counts of failures
  and preemptions, and a failed task (bad input too) is resubmitted at once;
* ``cancelled`` (the scheduler says its user cancelled it) -> nothing, unless
  ``include_cancelled``;
* ``corrupt`` -> report; with ``restart_corrupt``, set ``ckpts/`` aside
  (never deleted) and resubmit from scratch;
* a submission whose outcome was never recorded (its coordinator died) is
  reconciled once it has waited ``reconcile_grace`` seconds on this host's clock
  (``TaskStatus.intent_age``, measured by `candle_restart.coordinator.grace`; not measured:
  it waits), never blindly repeated.

`Policy`'s field defaults are the one source of the defaults (the CLI's flags
default to None and mean "not given"; see `with_values`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from candle_restart.coordinator.states import TaskStatus

Action = Literal["submit", "reconcile", "record_lost", "wait", "none", "give_up", "report"]


@dataclass(frozen=True)
class Policy:
    max_failures: int = 2  # training errors (cause ``error``)
    max_preemptions: int = 50  # signals (cause ``preempted``)
    max_timeouts: int = 10  # walltimes (cause ``timeout``)
    max_node_failures: int = 20  # runners lost with their node, or killed (cause ``node_fail``)
    max_oom: int = 2  # killed for memory (cause ``oom``)
    max_hangs: int = 3  # stopped by the runner's watchdog (cause ``hang``)
    no_progress_attempts: int = 3  # attempt ends in a row with no newer checkpoint; 0: never
    backoff_seconds: float = 30.0
    restart_corrupt: bool = False
    reconcile_grace: float = 60.0
    include_cancelled: bool = False
    host_bad_ends: int = 2  # bad ends on a host before the next submissions avoid it (coordinator.hosts); 0: never
    max_excluded_share: float = 0.25  # the most of a partition's nodes excluded at once (0 to 1)


# The restart budgets (integers >= 0): the `Policy` field, and what it counts.  A sweep's
# ``restart:`` block takes these keys and ``resume`` takes them as flags (``--max-failures``).
BUDGETS: dict[str, str] = {
    "max_failures": "training errors before a task is given up",
    "max_preemptions": "preemptions (signals) before a task is given up",
    "max_timeouts": "walltime ends before a task is given up",
    "max_node_failures": "runners lost with their node (or killed) before a task is given up",
    "max_oom": "kills for memory before a task is given up",
    "max_hangs": "hangs (no heartbeat within the watchdog's limit) before a task is given up",
    "no_progress_attempts": "attempt ends in a row without a newer checkpoint before a task is given up; "
    "0: never",
}
# Which hosts to avoid (`candle_restart.coordinator.hosts`): a sweep's ``restart:`` block and ``resume``'s flags.
HOST_KEYS: dict[str, str] = {
    "host_bad_ends": "bad ends (hang, node_fail, an error not reproduced elsewhere, slow epochs) on a host "
    "before the next Slurm submissions exclude it; 0: never",
    "max_excluded_share": "the most of a partition's nodes excluded at once, 0 to 1",
}
RESTART_KEYS = frozenset({*BUDGETS, *HOST_KEYS, "backoff_seconds"})  # what a sweep's ``restart:`` block may set


def with_values(policy: Policy, **values: object) -> Policy:
    """``policy`` with every given value that is not None (a flag that was not given keeps it)."""
    known = {f.name for f in fields(Policy)}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"not Policy fields: {sorted(unknown)}")
    return replace(policy, **{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]


_ENDED = {
    "preempted": "preempted",
    "timeout": "timed out",
    "node_fail": "lost its runner",
    "oom": "killed for memory",
    "hang": "hung",
    "error": "failed",
}
_CAP_OF = {
    "preempted": "max_preemptions",
    "timeout": "max_timeouts",
    "node_fail": "max_node_failures",
    "oom": "max_oom",
    "hang": "max_hangs",
    "error": "max_failures",
}


def cause_cap(policy: Policy, cause: str) -> tuple[str, int]:
    """The name and value of ``policy``'s budget for attempt ends of ``cause``."""
    name = _CAP_OF.get(cause, "max_preemptions")
    return name, int(getattr(policy, name))


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    from_scratch: bool = False


def decide(status: TaskStatus, policy: Policy) -> Decision:
    """The action for ``status`` under ``policy`` (see the module docstring); no clock is read."""
    if status.pending_intent is not None:  # its age on this host's clock, never its writer's stamp
        if status.intent_age is None or status.intent_age < policy.reconcile_grace:
            return Decision("none", f"submission {status.pending_intent} may be in flight")
        return Decision("reconcile", f"submission {status.pending_intent} has no recorded outcome")
    if status.extra.runner_lost:
        return Decision("record_lost", status.reason)
    state = status.state
    if state == "new":
        return Decision("submit", "new task", from_scratch=True)
    if state in ("queued", "running"):
        return Decision("none", status.reason)
    if state in ("completed", "pruned"):
        return Decision("none", state)
    if state in ("preempted", "failed") and not status.retry_requested:
        stalled = policy.no_progress_attempts and status.stalled >= policy.no_progress_attempts
        if stalled and (state == "preempted" or status.retryable):
            return Decision(
                "give_up",
                f"no progress in {status.stalled} attempts (none committed a newer checkpoint or changed its files; "
                f"the last ended: {status.cause}): {status.reason}",
            )
    if state == "preempted":
        cause = status.cause if status.cause in _CAP_OF else "preempted"
        name, cap = cause_cap(policy, cause)
        count = status.causes.get(cause, 0) if status.cause else status.preemptions
        if count >= cap:
            return Decision("give_up", f"{_ENDED[cause]} {count} times (cap {cap}, {name})")
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
    waited = status.exit_age or 0.0  # on this host's clock, never the runner's stamp; not measured: none
    wait = policy.backoff_seconds * 2 ** max(status.failures - 1, 0) - waited
    if wait > 0:
        return Decision("wait", f"backing off {wait:.0f} s after failure {status.failures}")
    return Decision("submit", f"retry {status.failures + 1} of {policy.max_failures} after: {status.reason}")
