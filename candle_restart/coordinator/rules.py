"""Classification as pure functions of `TaskFacts`: the state, its reason and the causes.

`classify` reads no file, no clock and no process: the same facts always give the same
`Verdict`, so it is tested as a table (``tests/coordinator/test_rules.py``).  Its steps:

1. the state from the files and the processes (`draft`): an intent without an outcome is
   ``queued``; a submission without a runner asks the backend; ``state.json`` saying running asks
   the runner's pid, then the scheduler (a dead runner whose submission lives on is ``queued``,
   else ``preempted`` with ``runner_lost``); otherwise ``state.json``'s own word (a stopped runner
   whose submission the scheduler still runs is ``queued``);
2. the scheduler's final state overrides a preempted or failed task it says was cancelled;
3. cause attribution (`attribute`): the journal's ledger of attempt ends, plus the lost runner's
   end (the scheduler's cause, else the kernel's OOM record, else ``node_fail``), or the
   scheduler's better word on the latest end;
4. a preempted or failed task whose checkpoints were committed but none verifies is ``corrupt``;
   one a search stopped is ``pruned``; a ``retry_requested`` makes a preempted or failed task
   retryable.

The ``asks_*`` functions say which questions the facts leave open; the gatherer
(`candle_restart.coordinator.states.gather`) asks exactly those, so a scan asks a backend only
what the files cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from candle_restart.coordinator.backend import Submission
from candle_restart.coordinator.causes import cause_of_scheduler_state
from candle_restart.coordinator.facts import TaskFacts, replay
from candle_restart.coordinator.taskstatus import State
from candle_restart.records.journal import SUBMITTED
from candle_restart.records.taskstate import TaskState
from candle_restart.task.progress import UNKNOWN

_ENDED_EARLY = ("preempted", "failed")
_LOST_CAUSES = ("timeout", "oom", "node_fail", "preempted")  # a scheduler's word on a lost runner
_SCHEDULER_KNOWS = ("timeout", "oom", "node_fail", "cancelled")  # its word on an end the runner recorded


@dataclass(frozen=True)
class Verdict:
    """The state of one task, why, and the causes of its attempts' ends."""

    state: State
    reason: str
    retryable: bool = True
    runner_lost: bool = False  # the runner died without recording its end
    failed_submission: bool = False  # a submission ended before its runner started: one more failure
    retry_requested: str | None = None  # a ``retry_requested`` not yet acted on (kept while it applies)
    ckpt_key: str | None = None  # the key of what the task shows (a lost command's own files too)
    cause: str | None = None  # why the latest attempt ended
    causes: dict[str, int] = field(default_factory=dict)  # attempt ends per cause, since a retry request
    stalled: int = 0  # attempt ends in a row without a newer checkpoint
    lost_cause: str | None = None  # why the runner was lost, as far as can be told


def submission_of(facts: TaskFacts) -> Submission | None:
    """The latest recorded submission (None when the journal has none)."""
    latest = facts.journal.latest
    if latest is None or not latest.submission:
        return None
    return Submission.from_json(latest.submission)


def classify(facts: TaskFacts) -> Verdict:
    """The state, reason and causes of the task ``facts`` describe (see the module docstring)."""
    if facts.bad_spec is not None:
        return Verdict("failed", f"bad input: {facts.bad_spec}", retryable=False)
    verdict = _cancelled(draft(facts), facts)
    verdict = attribute(verdict, facts)
    corrupt = facts.ckpt.problem
    if corrupt and verdict.state in _ENDED_EARLY:
        verdict = replace(verdict, state="corrupt", reason=f"no checkpoint verifies: {corrupt}")
    if facts.pruned is not None and verdict.state not in ("new", "queued", "running", "completed"):
        reason = f"pruned by the search: {facts.pruned.reason}"
        verdict = replace(verdict, state="pruned", reason=reason, retryable=False, runner_lost=False)
    requested = facts.journal.retry_requested
    if requested and verdict.state in _ENDED_EARLY:  # the user fixed the cause (bad input too) and asked again
        return replace(verdict, retryable=True, retry_requested=requested)
    return verdict


def draft(facts: TaskFacts) -> Verdict:
    """Step 1: the state from the files, the runner's pid and the scheduler's liveness."""
    state, latest = facts.state, facts.journal.latest
    runner = state.status if state else None
    if latest is not None and latest.outcome is None and runner in (None, "queued"):
        verdict = Verdict("queued", f"submission {facts.journal.generation} intended, outcome not recorded")
    elif runner == "queued" or (runner is None and latest is not None and latest.outcome == SUBMITTED):
        verdict = _from_backend(facts)
    elif state is None or runner is None:
        problem = facts.state_problem
        if problem and problem != "no state.json":  # an unknown status, too
            verdict = Verdict("failed", f"{problem}; reported, not resubmitted", retryable=False)
        else:
            verdict = Verdict("new", "never submitted")
    else:
        verdict = _from_state(facts, state)
    if runner in _ENDED_EARLY and latest is not None and latest.outcome == SUBMITTED:
        verdict = _still_alive(verdict, facts)
    return verdict


def _from_state(facts: TaskFacts, state: TaskState) -> Verdict:
    """What ``state.json``'s status says (a running one asks the processes)."""
    runner = state.status
    if runner == "running":
        return _from_runner(facts, state)
    if runner == "completed":
        return Verdict("completed", "the runner reported completion")
    if runner == "preempted":
        return Verdict("preempted", _or(state.reason, "stopped on a signal"))
    if runner == "bad_input":
        return Verdict("failed", f"bad input (exit 2), never retried: {state.reason}", retryable=False)
    if runner == "failed":
        return Verdict("failed", _or(state.reason, "training error"))
    if runner == "pruned":  # recorded by the search once its runner stopped
        return Verdict("pruned", _or(state.reason, "pruned by a search"), retryable=False)
    return Verdict("new", "never submitted")  # a status `TaskState` does not know is its load error


def _from_backend(facts: TaskFacts) -> Verdict:
    """A submission whose runner has not written state.json (or says queued): the backend knows."""
    submission = submission_of(facts)
    if submission is None:
        return Verdict("failed", "state.json says queued but the journal has no submission")
    live = facts.probes.scheduler or "unknown"
    if live in ("pending", "unknown"):
        return Verdict("queued", f"submission {submission.generation} is {live}")
    if live == "running":
        return Verdict("running", f"submission {submission.generation} is starting")
    # counts as a failure, so a task whose runner cannot even start stops at max_failures
    return Verdict(
        "failed", f"submission {submission.generation} ended before its runner started", failed_submission=True
    )


def _from_runner(facts: TaskFacts, state: TaskState) -> Verdict:
    """state.json says running: its pid on this host, else the scheduler, tells whether it is."""
    live = facts.probes.runner or "unknown"
    scheduler = facts.probes.scheduler
    if live == "unknown":  # the runner is on another host: the scheduler knows better
        live = scheduler or "unknown"
    if live in ("running", "pending", "unknown"):
        where = f"pid {state.pid} on {state.host}"
        return Verdict("running", f"runner {where}" + (" (liveness unknown)" if live == "unknown" else ""))
    submission = submission_of(facts)
    if submission is not None and scheduler in ("pending", "running"):  # requeued by its scheduler
        return Verdict("queued", f"runner gone; submission {submission.generation} is {scheduler} again")
    reason = f"runner pid {state.pid} on {state.host} died without recording an exit"
    return Verdict("preempted", reason, runner_lost=True)


def _still_alive(verdict: Verdict, facts: TaskFacts) -> Verdict:
    """A runner that stopped while its submission lives on (Parsl retrying, Slurm requeued): queued."""
    submission, live = submission_of(facts), facts.probes.scheduler
    if submission is None or live is None:
        return verdict
    if live in ("pending", "running") or (live == "unknown" and submission.backend != "local"):
        reason = f"{verdict.reason}; submission {submission.generation} is {live}: its scheduler reruns it"
        return replace(verdict, state="queued", reason=reason)
    return verdict


def _final(verdict: Verdict, facts: TaskFacts) -> str | None:
    """The scheduler's final state, where it may matter: a task that ended early (or that this
    final state said was cancelled)."""
    return facts.probes.final if verdict.state in (*_ENDED_EARLY, "cancelled") else None


def _cancelled(verdict: Verdict, facts: TaskFacts) -> Verdict:
    """Step 2: a scheduler that says the job was cancelled (scancel) overrides the runner's "preempted"."""
    final = _final(verdict, facts)
    if not final or not final.startswith("CANCELLED"):
        return verdict
    latest = facts.journal.latest
    job = ((latest.submission if latest else None) or {}).get("job_id")
    reason = f"job {job} was cancelled ({final}); not resubmitted"
    return replace(verdict, state="cancelled", reason=reason, retryable=False, runner_lost=False)


def _key(verdict: Verdict, facts: TaskFacts) -> str | None:
    """The key of what the task shows: its newest checkpoint's, or a lost command's own files'."""
    spec, ckpt = facts.spec, facts.ckpt
    if verdict.runner_lost and spec is not None and spec.command and ckpt.key is None:
        return UNKNOWN if ckpt.unreadable is not None or facts.probes.progress is None else facts.probes.progress
    return ckpt.key


def attribute(verdict: Verdict, facts: TaskFacts) -> Verdict:
    """Step 3: ``ckpt_key`` (`_key`), and ``cause``/``causes``/``stalled`` from the journal's ledger; a lost runner's end is
    added with its cause (``lost_cause``: the scheduler's TIMEOUT, OUT_OF_MEMORY, NODE_FAIL or
    PREEMPTED; else the kernel's OOM record; else ``node_fail``), and otherwise the scheduler's
    final state renames the latest end where it knows better."""
    scheduler = cause_of_scheduler_state(_final(verdict, facts))
    ledger = replay(facts.journal.ends)
    key, lost_cause = _key(verdict, facts), None
    if verdict.runner_lost:
        cause = scheduler if scheduler in _LOST_CAUSES else None
        lost_cause = cause or ("oom" if facts.probes.oom else "node_fail")
        ledger.end(lost_cause, key)
    elif scheduler in _SCHEDULER_KNOWS and verdict.state in (*_ENDED_EARLY, "cancelled"):
        ledger.reclassify_last(scheduler)
    causes = dict(ledger.counts)
    return replace(
        verdict, ckpt_key=key, cause=ledger.last_cause, causes=causes, stalled=ledger.stalled, lost_cause=lost_cause
    )


# -- the questions the facts leave open (asked by the gatherer, in this order) ---------------


def asks_runner(facts: TaskFacts) -> bool:
    """Whether the runner's pid is asked: state.json says running."""
    return facts.state is not None and facts.state.status == "running"


def asks_scheduler(facts: TaskFacts) -> bool:
    """Whether the latest submission's backend is asked whether it lives (``probes.runner`` known)."""
    state, latest = facts.state, facts.journal.latest
    runner = state.status if state else None
    if submission_of(facts) is None or (latest is not None and latest.outcome is None and runner in (None, "queued")):
        return False
    if runner == "queued" or (runner is None and latest is not None and latest.outcome == SUBMITTED):
        return True
    if runner == "running":
        return facts.probes.runner not in ("running", "pending")
    return runner in _ENDED_EARLY and latest is not None and latest.outcome == SUBMITTED


def asks_final_state(facts: TaskFacts) -> bool:
    """Whether the scheduler's final state is asked: the task ended early, as far as step 1 tells."""
    return submission_of(facts) is not None and draft(facts).state in _ENDED_EARLY


def lost(facts: TaskFacts) -> bool:
    """Whether the runner is lost after steps 1 and 2 (``probes.final`` known)."""
    return _cancelled(draft(facts), facts).runner_lost


def asks_oom(facts: TaskFacts, this_host: str) -> bool:
    """Whether the kernel is asked about the lost runner: the scheduler names no cause and the
    runner ran on ``this_host``."""
    if cause_of_scheduler_state(facts.probes.final) in _LOST_CAUSES or facts.state is None:
        return False
    return facts.state.host == this_host and lost(facts)


def asks_progress(facts: TaskFacts) -> bool:
    """Whether a lost ``command``'s own checkpoint files are fingerprinted (no readable key)."""
    spec, ckpt = facts.spec, facts.ckpt
    if spec is None or not spec.command or ckpt.key is not None or ckpt.unreadable is not None:
        return False
    return lost(facts)


def _or(text: str | None, default: str) -> str:
    return default if text is None else text
