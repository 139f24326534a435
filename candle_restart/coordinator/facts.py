"""What one task's files and processes say, gathered before anything is decided: `TaskFacts`.

Classification runs in three steps: `candle_restart.coordinator.states.gather` reads the facts
(the records, the checkpoint that ``ckpts/last`` names, the journal, and the answers of the
runner's pid and the backend), `candle_restart.coordinator.rules.classify` turns them into a
state and its cause with no I/O, and `candle_restart.coordinator.states.classify` assembles the
`TaskStatus`.  Everything here is frozen: a fact is what was seen, never updated.

`summarize` (pure) folds the journal's events into `JournalFacts`: counts of attempts,
failures and preemptions since the last ``retry_requested``, the latest submission intent and
its outcome, and the attempt ends (`End`) that `candle_restart.coordinator.causes.Ledger` replays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from candle_restart.coordinator.causes import CAUSES, Ledger, cause_of_exit
from candle_restart.records.journal import (
    EXIT,
    RETRY_REQUESTED,
    RUNNER_LOST,
    START,
    SUBMIT_ABANDONED,
    SUBMIT_FAILED,
    SUBMIT_INTENT,
    SUBMITTED,
    EventKind,
    JournalEvent,
)
from candle_restart.records.jsontypes import JsonObject
from candle_restart.records.search import PruneRecord
from candle_restart.records.taskspec import TaskSpec
from candle_restart.records.taskstate import TaskState
from candle_restart.task.process import Liveness


@dataclass(frozen=True)
class Intent:
    """The latest submission intent of the journal, and what became of it."""

    generation: int
    time: str | None = None
    batch: str | None = None
    host: str | None = None  # the host of the coordinator that recorded it (its ``by``)
    outcome: EventKind | None = None  # submitted, submit_failed, submit_abandoned; None: not recorded
    submission: JsonObject | None = None  # the outcome's ``submission`` (backend, generation, ids)


@dataclass(frozen=True)
class End:
    """One step of the attempt ledger: an attempt ended (``cause``, its checkpoint ``key``), one
    completed, or a retry request reset the counts (`Ledger.end`, `completed`, `reset`)."""

    kind: Literal["end", "completed", "reset"]
    cause: str | None = None
    key: str | None = None


def replay(ends: Iterable[End]) -> Ledger:
    """A fresh `Ledger` holding ``ends`` in order."""
    ledger = Ledger()
    for end in ends:
        if end.kind == "end":
            ledger.end(str(end.cause), end.key)
        elif end.kind == "completed":
            ledger.completed()
        else:
            ledger.reset()
    return ledger


@dataclass(frozen=True)
class JournalFacts:
    """What ``journal.jsonl`` and ``runs.jsonl`` say (see the counts in `summarize`)."""

    attempts: int = 0
    failures: int = 0
    preemptions: int = 0
    last_exit: int | None = None
    last_exit_time: str | None = None
    exit_host: str | None = None
    retry_requested: str | None = None  # the time of a ``retry_requested`` no intent has acted on yet
    generation: int = 0  # the latest submission intent's generation (0: none)
    latest: Intent | None = None  # that intent
    ends: tuple[End, ...] = ()


@dataclass(frozen=True)
class CkptFacts:
    """What the checkpoint directory says: its newest checkpoint that verifies, or why none does."""

    epoch: int | None = None
    epochs: int | None = None
    best_metric: float | None = None
    time: str | None = None  # ckpt-info.json's ``timestamp``
    complete: bool | None = None  # it ends an epoch (None: no checkpoint read)
    key: str | None = None  # its `commit_key`
    problem: str | None = None  # checkpoints were committed but none verifies
    unreadable: str | None = None  # a transient error kept the newest checkpoint from being read
    node_local: str | None = None  # two tiers: the newest checkpoint is only on a node


@dataclass(frozen=True)
class Probes:
    """What the runner's pid, the backend and the kernel answered.  Each is asked only when the
    files leave the question open (`candle_restart.coordinator.rules`' ``asks_*``); None: not asked."""

    runner: Liveness | None = None  # state.json's runner pid (asked when state.json says running)
    scheduler: Liveness | None = None  # the latest submission's backend (None too: no such backend here)
    final: str | None = None  # the scheduler's final state of it (None too: alive, unknown, no such record)
    oom: bool | None = None  # the kernel recorded an OOM kill of the lost runner (on this host)
    progress: str | None = None  # a lost ``command``'s fingerprint of its own checkpoint files


@dataclass(frozen=True)
class TaskFacts:
    """Everything classification knows of one task."""

    task_id: str
    spec: TaskSpec | None = None
    bad_spec: str | None = None  # task.json's one-line error (then nothing else was read)
    journal: JournalFacts = field(default_factory=JournalFacts)
    ckpt: CkptFacts = field(default_factory=CkptFacts)
    state: TaskState | None = None
    state_problem: str | None = None  # "no state.json", or its one-line error
    pruned: PruneRecord | None = None  # a search stopped it early (``pruned.json``)
    probes: Probes = field(default_factory=Probes)


def summarize(events: Iterable[JournalEvent]) -> JournalFacts:
    """Fold the journal's events into `JournalFacts` (pure).

    Failures are exits ``failed`` or ``bad_input``, submissions that failed, and older submissions
    whose runner never started; preemptions are exits ``preempted`` and lost runners.  A
    ``retry_requested`` starts failures, preemptions and the ledger again; the next intent acts on it.
    """
    attempts = failures = preemptions = 0
    last_exit: int | None = None
    last_exit_time = exit_host = retry_requested = None
    intents: dict[int, Intent] = {}
    started: set[int | None] = set()
    counted_from = 0  # submissions up to this generation were before the last retry request
    ends: list[End] = []
    for event in events:
        kind = event.kind
        if kind == START:
            attempts += 1
            started.add(event.generation)
        elif kind == EXIT:
            last_exit, last_exit_time = event.exit_code, event.time
            exit_host = event.host
            failures += event.status in ("failed", "bad_input")
            preemptions += event.status == "preempted"
            cause = cause_of_exit(event)  # UNKNOWN key when an older runner did not record it
            ends.append(End("completed") if cause is None else End("end", cause, event.ckpt))
        elif kind == RETRY_REQUESTED:  # the user's `resume --retry-failed`: budgets start again
            failures = preemptions = 0
            ends.append(End("reset"))
            retry_requested = str(event.time)
            counted_from = max(intents, default=0)
        elif kind == SUBMIT_INTENT and event.generation is not None:
            by = event.extras.get("by")
            host = by.get("host") if isinstance(by, dict) else None
            intents[event.generation] = Intent(
                event.generation, event.time, event.batch, host if isinstance(host, str) else None
            )
            retry_requested = None  # acted on
        elif kind in (SUBMITTED, SUBMIT_FAILED, SUBMIT_ABANDONED) and event.generation in intents:
            intent = intents[event.generation]
            intents[event.generation] = Intent(
                intent.generation, intent.time, intent.batch, intent.host, kind, event.submission
            )
            failures += kind == SUBMIT_FAILED
        elif kind == RUNNER_LOST:
            preemptions += 1
            ends.append(End("end", event.cause if event.cause in CAUSES else "node_fail", event.ckpt))
    generation = max(intents, default=0)
    # An older submission whose runner never started (it could not even launch) was a failure.
    failures += sum(
        1
        for g, i in intents.items()
        if counted_from < g < generation and i.outcome == SUBMITTED and g not in started
    )
    return JournalFacts(
        attempts,
        failures,
        preemptions,
        last_exit,
        last_exit_time,
        exit_host,
        retry_requested,
        generation,
        intents.get(generation),
        tuple(ends),
    )
