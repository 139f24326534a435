"""The adaptive search behind a sweep's ``search:`` section: Optuna's ask/tell, made durable.

Each asked point becomes a task directory like any other: ``<name>-tNNNN-<hash>`` (NNNN: the
trial number, in ask order), its parameters in ``task.json``, written (atomically, fsynced)
before the trial exists anywhere else.  The driver's state is never stored on its own: every
start rebuilds a fresh in-memory study from the run root (`Search.rebuild`): the trials'
directories in trial order, the outcomes told so far from ``.search-<name>.jsonl``
(`candle_restart.records.search`; each line says how many trials had been asked when it was
told), and each trial's per-epoch metric from its ``ckpts/events.jsonl``.  The replay asks the
seeded sampler again for every recorded trial, with the same tells in between, so a sampler that
is deterministic given its seed and history (random, TPE, CMA-ES, the genetic one) is left in
the state it had; if a replayed ask gives other values than the recorded ones the recorded
values are what the study keeps.  So after the driver is killed ``sweep run`` continues the
same search: no trial asked twice (a directory is never replaced), none lost (a trial whose
outcome was not logged is told when it is seen final), and an interrupted trial is resumed or
retried by the coordinator under the sweep's restart policy like any task.

Pruning (``prune:``, Optuna's median or successive-halving rule) reads the same per-epoch values
as they appear: a trial the rule stops gets ``pruned.json`` first, then its runner (on this host)
its checkpoint signal (a runner on another host sees the file: `candle_restart.task.stoppoll`);
it commits, exits, and is ``pruned`` from then on (terminal, never
resubmitted, its checkpoints kept); the driver then writes ``pruned`` into its ``state.json``.

One driver per search: a second ``sweep run`` on the same run root is refused while the
first holds the search lease (``.search-<name>.lock``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from candle_restart.errors import CkptError
from candle_restart.records.epochs import EventFileError, read_events
from candle_restart.records.search import (
    PRUNED_FILE,
    PruneRecord,
    SearchRecordError,
    TellRecord,
    append_tell,
    log_path,
    read_pruned,
    read_tells,
)
from candle_restart.runtime import fsio
from candle_restart.runtime.lease import Lease, LeaseBusy
from candle_restart.sweep.expand import write_manifest
from candle_restart.sweep.schema import Sweep
from candle_restart.sweep.study import distributions, make_study
from candle_restart.sweep.yamlfile import SweepError
from candle_restart.task.taskdir import TaskDir, create_task, make_task_id

if TYPE_CHECKING:
    import optuna

    from candle_restart.coordinator.resume import ResumeOutcome

Log = Callable[[str], None]


def trial_prefix(name: str) -> str:
    return f"{name}-t"


def trial_task_id(name: str, number: int, params: dict[str, Any]) -> str:
    """``<name>-tNNNN-<hash of params>``: ordered by trial number, stable for its parameters."""
    return make_task_id(f"{trial_prefix(name)}{number:04d}", params)


def recorded_trials(run_root: Path, name: str) -> dict[int, TaskDir]:
    """The trials of search ``name`` under ``run_root`` by number (directories with a ``task.json``)."""
    pattern = re.compile(re.escape(make_task_id(trial_prefix(name), {}).rsplit("-", 1)[0]) + r"(\d{4,})-")
    found: dict[int, TaskDir] = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(run_root):
            match = pattern.match(entry.name)
            if match and (Path(entry.path) / "task.json").is_file():
                number = int(match.group(1))
                if number in found:
                    raise SweepError(entry.path, None, f"trial {number} has two directories; remove the one not meant")
                found[number] = TaskDir(Path(entry.path))
    return found


def epoch_values(task: TaskDir, metric: str) -> dict[int, float]:
    """The task's ``metric`` at each epoch end it recorded (the newest value of an epoch run twice)."""
    values: dict[int, float] = {}
    try:
        events = read_events(task.ckpts)
    except (EventFileError, OSError):
        return values
    for event in events:
        if event.kind != "epoch" or event.epoch is None:
            continue
        value = (event.metrics or {}).get(metric)
        if value is None and event.metric == metric:
            value = event.value
        if value is not None and math.isfinite(value):
            values[event.epoch] = value
    return values


@dataclass
class Trial:
    """One asked point: its task, the varied values, and its study handle until it is told."""

    number: int
    task: TaskDir
    values: dict[str, Any]
    handle: optuna.trial.Trial | None
    reported: set[int] = field(default_factory=set)
    signalled: set[int] = field(default_factory=set)  # runner pids asked to stop after pruning


class Search:
    """The search of one sweep; `open` takes the lease and rebuilds it (see the module docstring)."""

    def __init__(self, sweep: Sweep, log: Log = print) -> None:
        assert sweep.search is not None
        self.sweep, self.block, self.log = sweep, sweep.search, log
        self.lease = Lease(sweep.run_root / f".search-{sweep.name}.lock", f"the search driver of sweep {sweep.name}")
        self.trials: dict[int, Trial] = {}
        self.tasks: list[TaskDir] = []  # in trial order; grows as trials are asked
        self.replayed = self.diverged = 0
        self.study: optuna.Study | None = None
        self.dists: dict[str, Any] = {}

    # -- start ---------------------------------------------------------------------------------
    def open(self) -> None:
        """Check and record the sweep, take the lease (SweepError if another driver holds it),
        rebuild the study from the run root, and ask up to ``in_flight`` trials."""
        write_manifest(self.sweep, check_only=True)
        self.sweep.run_root.mkdir(parents=True, exist_ok=True)
        try:
            self.lease.acquire(wait=0)
        except LeaseBusy as exc:
            raise SweepError(str(self.sweep.source), "search", f"another driver runs this search: {exc.problem}") from None
        try:
            write_manifest(self.sweep)
            self.rebuild()
        except BaseException:
            self.lease.release()
            raise

    def close(self) -> None:
        self.lease.release()

    def rebuild(self) -> None:
        self.dists = distributions(self.block)
        self.study = make_study(self.block)
        recorded = recorded_trials(self.sweep.run_root, self.sweep.name)
        missing = [n for n in range(len(recorded)) if n not in recorded]
        if missing:
            raise SweepError(str(self.sweep.run_root), "search", f"trial {missing[0]} is missing; trials must be 0..N-1")
        try:
            tells = read_tells(log_path(self.sweep.run_root, self.sweep.name))
        except (SearchRecordError, OSError) as exc:
            raise SweepError(str(log_path(self.sweep.run_root, self.sweep.name)), None, str(exc)) from None
        by_asks: dict[int, list[TellRecord]] = {}
        for tell in tells:
            if tell.trial < len(recorded):
                by_asks.setdefault(min(max(tell.asks, tell.trial + 1), len(recorded)), []).append(tell)
        for number in range(len(recorded)):
            for tell in by_asks.get(number, []):
                self._replay_tell(tell)
            task = recorded[number]
            spec = task.load_spec()
            values = {k: spec.params[k] for k in self.dists if k in spec.params}
            self._register(number, task, self._ask(values))
        for tell in by_asks.get(len(recorded), []):
            self._replay_tell(tell)
        self.replayed = len(recorded)

    def _ask(self, recorded: dict[str, Any] | None) -> optuna.trial.Trial:
        import optuna

        assert self.study is not None
        handle = self.study.ask(self.dists)
        if recorded is not None and handle.params != recorded:  # the sampler did not repeat itself
            self.diverged += 1
            self.study.tell(handle, state=optuna.trial.TrialState.FAIL)
            self.study.enqueue_trial(recorded)
            handle = self.study.ask(self.dists)
        return handle

    def _register(self, number: int, task: TaskDir, handle: optuna.trial.Trial) -> None:
        self.trials[number] = Trial(number, task, dict(handle.params), handle)
        self.tasks.append(task)

    def _replay_tell(self, tell: TellRecord) -> None:
        trial = self.trials.get(tell.trial)
        if trial is None or trial.handle is None:
            return
        self._report(trial)
        self._tell(trial, tell.state, tell.value)

    # -- each round ----------------------------------------------------------------------------
    def trial_task(
        self, number: int, params: dict[str, Any], parent: str | None = None, lineage: dict[str, Any] | None = None
    ) -> TaskDir:
        """Trial ``number``'s task directory with ``params``, created and made durable (fsync'd)."""
        task = create_task(
            self.sweep.run_root,
            params,
            entry=self.sweep.entry,
            command=self.sweep.command,
            sweep=self.sweep.name,
            task_id=trial_task_id(self.sweep.name, number, params),
            python_path=self.sweep.python_path,
            dir_flags=self.sweep.dir_flags,
            parent=parent,
            lineage=lineage,
        )
        fsio.fsync_path(task.path.parent)
        return task

    def ask_new(self) -> Trial:
        """Ask the next point and write its task directory (durably) before anything else sees it."""
        number = len(self.trials)
        self.lease.check()  # LeaseLost: another driver took this search over (this one was paused)
        handle = self._ask(None)
        task = self.trial_task(number, {**self.sweep.params, **handle.params})
        self._register(number, task, handle)
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in handle.params.items())
        self.log(f"search: trial {number} asked: {shown} ({task.task_id})")
        return self.trials[number]

    def fill(self) -> None:
        """Ask trials until ``in_flight`` are untold or the budget is asked."""
        while len(self.trials) < self.block["trials"] and self.in_flight() < self.block["in_flight"]:
            self.ask_new()

    def in_flight(self) -> int:
        return sum(t.handle is not None for t in self.trials.values())

    def done(self) -> bool:
        return len(self.trials) >= self.block["trials"] and self.in_flight() == 0

    def step(self, outcomes: list[ResumeOutcome]) -> None:
        """Report new epoch values, prune, tell the trials that ended, ask new ones."""
        by_id = {o.status.task_id: o for o in outcomes}
        for trial in self.trials.values():
            outcome = by_id.get(trial.task.task_id)
            if trial.handle is None or outcome is None:
                continue
            values = self._report(trial)
            state = outcome.status.state
            if outcome.final:
                if state == "pruned":
                    _record_pruned(trial.task)
                if state == "completed" and values:
                    self._log_and_tell(trial, "complete", values[max(values)])
                else:
                    self._log_and_tell(trial, "pruned" if state == "pruned" else "fail", None)
            elif self.block["prune"] is not None and state == "running" and values:
                self._maybe_prune(trial, values)
        self.fill()

    def _report(self, trial: Trial) -> dict[int, float]:
        values = epoch_values(trial.task, self.block["metric"])
        for epoch in sorted(values):
            if epoch not in trial.reported and trial.handle is not None:
                trial.handle.report(values[epoch], epoch)
                trial.reported.add(epoch)
        return values

    def _tell(self, trial: Trial, state: str, value: float | None) -> None:
        import optuna

        assert self.study is not None and trial.handle is not None
        if state == "complete" and value is not None:
            self.study.tell(trial.handle, value)
        else:
            kind = optuna.trial.TrialState.PRUNED if state == "pruned" else optuna.trial.TrialState.FAIL
            self.study.tell(trial.handle, state=kind)
        trial.handle = None

    def _log_and_tell(self, trial: Trial, state: str, value: float | None) -> None:
        tell = TellRecord(
            trial.number, state, value, len(self.trials), self.block["metric"], self.block["direction"]  # type: ignore[arg-type]
        )
        self.lease.check()
        append_tell(log_path(self.sweep.run_root, self.sweep.name), tell)
        self._tell(trial, state, value)
        shown = f"{self.block['metric']}={value:.6g}" if value is not None else "no value"
        self.log(f"search: trial {trial.number} {state}: {shown}")

    def _maybe_prune(self, trial: Trial, values: dict[int, float]) -> None:
        from candle_restart.sweep.runners import checkpoint_signal, local_runner

        assert trial.handle is not None
        path = trial.task.path / PRUNED_FILE
        if not path.exists():
            if not trial.handle.should_prune():
                return
            self.lease.check()
            epoch = max(values)
            reason = f"{self.block['metric']}={values[epoch]:.6g} at epoch {epoch} ({self.block['prune']['rule']} rule)"  # type: ignore[index]
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            fsio.atomic_write_bytes(path, PruneRecord(reason, epoch, stamp).to_bytes())
            self.log(f"search: trial {trial.number} pruned: {reason}")
        runner = local_runner(trial.task)
        if runner is None or not runner[1] or runner[0] in trial.signalled:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(runner[0], checkpoint_signal(trial.task))
            trial.signalled.add(runner[0])

    def best(self) -> Trial | None:
        """The best completed trial, from the log (None when none completed)."""
        tells = [t for t in read_tells(log_path(self.sweep.run_root, self.sweep.name)) if t.state == "complete"]
        if not tells:
            return None
        pick = min if self.block["direction"] == "minimize" else max
        best = pick(tells, key=lambda t: t.value if t.value is not None else math.inf)
        return self.trials.get(best.trial)


def _record_pruned(task: TaskDir) -> None:
    """Write ``pruned`` into the task's ``state.json`` (its runner has stopped: ``preempted`` or
    ``failed`` there), under the task lock; best effort: ``pruned.json`` already makes it pruned."""
    from candle_restart.coordinator.lock import LockBusy, task_lock

    with contextlib.suppress(LockBusy, CkptError, OSError), task_lock(task, timeout=5.0) as lease:
        state, _ = task.load_state()
        if state is not None and state.status in ("preempted", "failed"):
            lease.check()
            reason = pruned_reason(task) or "pruned by the search"
            task.write_state(replace(state, status="pruned", reason=f"pruned by the search: {reason}"))


def pruned_reason(task: TaskDir) -> str | None:
    """Why ``task`` was pruned (None when it was not)."""
    try:
        record = read_pruned(task.path)
    except CkptError as exc:
        return str(exc)
    return None if record is None else record.reason


def open_search(sweep: Sweep, log: Log = print) -> Search:
    """``sweep``'s search, rebuilt from the run root, holding its lease, its first trials asked."""
    assert sweep.search is not None
    kind: type[Search] = Search
    if sweep.search["pbt"] is not None:  # population-based training: `candle_restart.sweep.pbt`
        from candle_restart.sweep.pbt import Population

        kind = Population
    search = kind(sweep, log)
    search.open()
    search.fill()
    log(
        f"search {sweep.name}: {len(search.trials)} of {sweep.search['trials']} trials asked in {sweep.run_root} "
        f"({search.replayed} replayed from its records, {search.in_flight()} in flight)"
    )
    return search


def search_status(sweep: Sweep, table: str) -> str:
    """``sweep status`` of a search: how many trials were asked, then ``table`` (theirs)."""
    assert sweep.search is not None
    asked = len(recorded_trials(sweep.run_root, sweep.name))
    if not asked:
        return f"search {sweep.name}: no trial asked yet in {sweep.run_root} (of {sweep.search['trials']})"
    return f"search {sweep.name}: {asked} of {sweep.search['trials']} trials asked in {sweep.run_root}\n{table}"
