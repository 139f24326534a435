"""The restart coordinator: classify every task of a run root, resubmit the preempted ones exactly once.

* `classify`, `TaskStatus`, `STATES` (``states.py``): what state a task is in, and why.
* `Policy`, `Decision`, `decide` (``policy.py``): what to do about it.
* `task_lock`, `LockBusy` (``lock.py``): the per-task lease lock.
* `Backend`, `Submission` (``backend.py``); `LocalBackend` (``local.py``).
* `scan`, `resume` (``resume.py``): one pass over a run root; `report` (``report.py``): the status table.
* `request_retry` (``retry.py``): ``resume --retry-failed``, a ``retry_requested`` event per task.
"""

from candle_restart.coordinator.backend import Backend, Submission
from candle_restart.coordinator.local import LocalBackend
from candle_restart.coordinator.lock import LockBusy, task_lock
from candle_restart.coordinator.policy import Decision, Policy, decide
from candle_restart.coordinator.resume import ResumeOutcome, RunRootError, resume, scan, task_dirs
from candle_restart.coordinator.retry import request_retry
from candle_restart.coordinator.states import STATES, TaskStatus, classify

__all__ = [
    "STATES",
    "Backend",
    "Decision",
    "LocalBackend",
    "LockBusy",
    "Policy",
    "ResumeOutcome",
    "RunRootError",
    "Submission",
    "TaskStatus",
    "classify",
    "decide",
    "request_retry",
    "resume",
    "scan",
    "task_dirs",
    "task_lock",
]
