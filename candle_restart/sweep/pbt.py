"""Population-based training (``search.pbt``, `candle_restart.sweep.pbtschema`), made durable.

Each member of each generation is a task directory of its own, ``<name>-tNNNN-<hash>`` with
NNNN = generation x population + member (the trial number: `results` lists them in this
order), its parameters in ``task.json``: the base params, the member's values, and the number
of epochs to reach by the generation's end (``epochs_key`` = interval x (generation + 1)).
A member of generation g+1 names its parent in ``task.json`` (``parent``) and records
``lineage`` (generation, member, whether it exploited, the member it copied); its runner copies
the parent's newest verified checkpoint in before it trains (`candle_restart.task.warm`: through
the commit protocol, recorded as ``origin`` in the copy's ``ckpt-info.json`` and in
``origin.json``), then trains ``interval`` epochs more from it.  Nothing committed is replaced:
a generation's checkpoints stay in its own directories.

At a generation's boundary (all its members final) the driver ranks the members by the metric
they recorded at the generation's last epoch (``ckpts/events.jsonl``; a member without one ranks
last).  Exploit: each member in the bottom ``quantile`` takes the checkpoint of a member drawn
from the top ``quantile``; explore: its values are that member's, each key of ``perturb``
multiplied by a factor drawn from its list (clipped to ``space``).  The others continue from
their own checkpoint with their values.  Every draw comes from a generator seeded by the
search's seed and the generation, in member order, so the plan depends only on the records.

Durable like `candle_restart.sweep.search`: the state is rebuilt from the run root on every
start (the directories that exist).  A generation's members are created only from the finished
records of the one before, so a driver killed while creating them makes, when started again,
the same plan and creates only the missing ones: no exploit is decided or copied twice.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from candle_restart.records.search import TellRecord, append_tell, log_path, read_tells
from candle_restart.sweep.expand import _sample
from candle_restart.sweep.search import Search, Trial, epoch_values, recorded_trials
from candle_restart.sweep.yamlfile import SweepError
from candle_restart.task.taskdir import TaskDir

if TYPE_CHECKING:
    from candle_restart.coordinator.resume import ResumeOutcome
    from candle_restart.sweep.pbtschema import PbtBlock


class Plan:
    """One member of a generation to create: its values, its parent and how it was chosen."""

    def __init__(self, values: dict[str, Any], parent: str | None, lineage: dict[str, Any]) -> None:
        self.values, self.parent, self.lineage = values, parent, lineage


class Population(Search):
    """The PBT driver behind ``sweep run`` (see the module docstring); `Search`'s lease and interface."""

    @property
    def pbt(self) -> PbtBlock:
        assert self.block["pbt"] is not None
        return self.block["pbt"]

    def rebuild(self) -> None:
        self.final: dict[str, str] = {}  # task id -> its final state, as the coordinator classified it
        self.stopped = False
        recorded = recorded_trials(self.sweep.run_root, self.sweep.name)
        missing = [n for n in range(len(recorded)) if n not in recorded]
        if missing:
            raise SweepError(str(self.sweep.run_root), "search", f"trial {missing[0]} is missing; trials must be 0..N-1")
        for number in sorted(recorded):
            self._register_task(number, recorded[number])
        self.replayed = len(recorded)
        try:
            self.told = {t.trial for t in read_tells(log_path(self.sweep.run_root, self.sweep.name))}
        except OSError:
            self.told = set()

    def _register_task(self, number: int, task: TaskDir) -> None:
        spec = task.load_spec()
        values = {k: spec.params[k] for k in self.block["space"] if k in spec.params}
        self.trials[number] = Trial(number, task, values, None)
        self.tasks.append(task)

    # -- the plan of a generation --------------------------------------------------------------
    def score(self, number: int) -> float | None:
        """Member ``number``'s metric at its generation's last epoch (None: it has none)."""
        trial = self.trials[number]
        if self.final.get(trial.task.task_id) != "completed":
            return None  # read nothing of a member still training
        last = trial.task.load_spec().params.get(self.pbt["epochs_key"])
        return epoch_values(trial.task, self.block["metric"]).get(last) if isinstance(last, int) else None

    def plan(self, generation: int) -> list[Plan] | None:
        """Generation ``generation``'s members, from the finished records of the one before (None:
        no member of that one has a value, so the population cannot go on)."""
        population = self.pbt["population"]
        if generation == 0:
            rng = random.Random(self.block["seed"])
            space = self.block["space"]
            return [
                Plan({k: _sample(rng, space[k]) for k in sorted(space)}, None, {"generation": 0, "member": m})
                for m in range(population)
            ]
        first = (generation - 1) * population
        scores = {m: self.score(first + m) for m in range(population)}
        sign = -1.0 if self.block["direction"] == "maximize" else 1.0
        ranked = sorted(range(population), key=lambda m: (scores[m] is None, sign * (scores[m] or 0.0), m))
        cut = max(1, math.floor(population * self.pbt["quantile"]))
        top = [m for m in ranked[:cut] if scores[m] is not None]
        if not top:
            return None
        bottom = set(ranked[-cut:]) | {m for m in ranked if scores[m] is None}
        rng = random.Random(f"{self.block['seed']}-pbt-{generation}")
        plans = []
        for m in range(population):
            lineage: dict[str, Any] = {"generation": generation, "member": m, "score": scores[m]}
            if m in bottom:
                source = rng.choice(top)
                values = self._perturb(self.trials[first + source].values, rng)
                lineage.update(exploited=True, from_member=source, from_score=scores[source])
            else:
                source, values = m, dict(self.trials[first + m].values)
                lineage.update(exploited=False, from_member=m)
            plans.append(Plan(values, self.trials[first + source].task.task_id, lineage))
        return plans

    def _perturb(self, values: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        out = dict(values)
        for key, factors in self.pbt["perturb"].items():
            kind, bounds = next(iter(self.block["space"][key].items()))
            low, high = float(bounds[0]), float(bounds[1])  # type: ignore[arg-type]
            value = min(max(float(out[key]) * rng.choice(factors), low), high)
            out[key] = round(value) if kind == "int_uniform" else value
        return out

    def _create(self, generation: int, plans: list[Plan]) -> None:
        """Create the members of ``generation`` that do not exist yet (each durably, task.json last)."""
        population = self.pbt["population"]
        for m, plan in enumerate(plans):
            number = generation * population + m
            if number in self.trials:
                continue
            self.lease.check()  # LeaseLost: another driver took this search over
            params = {**self.sweep.params, **plan.values, self.pbt["epochs_key"]: self.pbt["interval"] * (generation + 1)}
            task = self.trial_task(number, params, plan.parent, plan.lineage)
            self._register_task(number, task)
            shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in plan.values.items())
            how = (
                f"exploits member {plan.lineage['from_member']} ({plan.parent})"
                if plan.lineage.get("exploited")
                else ("continues" if plan.parent else "starts fresh")
            )
            self.log(f"pbt: generation {generation} member {m} {how}: {shown} ({task.task_id})")

    # -- each round ----------------------------------------------------------------------------
    def generation(self) -> int:
        """The newest generation with a member (-1: none yet)."""
        return (len(self.trials) - 1) // self.pbt["population"] if self.trials else -1

    def fill(self) -> None:
        """Create the first generation (or the rest of it, left half made by a killed driver)."""
        if not self.stopped and len(self.trials) < self.pbt["population"]:
            self._make(0)

    def _make(self, generation: int) -> None:
        plans = self.plan(generation)
        if plans is None:
            self.stopped = True
            self.log(f"pbt: no member of generation {generation - 1} has a value of {self.block['metric']}; stopping")
            return
        self._create(generation, plans)

    def step(self, outcomes: list[ResumeOutcome]) -> None:
        """Note the members that ended; make the rest of a half-made generation (a killed driver's,
        once the one before is seen final), or, when the newest has all ended, the next."""
        self.observe({o.status.task_id: o.status.state for o in outcomes if o.final})

    def observe(self, final: dict[str, str]) -> None:
        """`step` given the final states seen (task id -> state), as ``sweep run`` sees them."""
        self.final.update(final)
        for trial in self.trials.values():
            state = self.final.get(trial.task.task_id)
            if state is not None and trial.number not in self.told:
                self._tell_log(trial, state)
        population, generation = self.pbt["population"], self.generation()
        if self.stopped or generation < 0:
            return
        if len(self.trials) % population:  # created from records that are final: the same plan again
            before = [self.trials[n].task.task_id for n in range((generation - 1) * population, generation * population)]
            if all(t in self.final for t in before):
                self._make(generation)
            return
        members = [self.trials[n].task.task_id for n in range(generation * population, (generation + 1) * population)]
        if generation + 1 < self.pbt["generations"] and all(t in self.final for t in members):
            self._make(generation + 1)

    def _tell_log(self, trial: Trial, state: str) -> None:
        """Append the member's outcome to the search log (the report's history reads it)."""
        value = self.score(trial.number)
        told = "complete" if state == "completed" and value is not None else "pruned" if state == "pruned" else "fail"
        self.lease.check()
        record = TellRecord(trial.number, told, value, len(self.trials), self.block["metric"], self.block["direction"])  # type: ignore[arg-type]
        append_tell(log_path(self.sweep.run_root, self.sweep.name), record)
        self.told.add(trial.number)

    def in_flight(self) -> int:
        return sum(t.task.task_id not in self.final for t in self.trials.values())

    def done(self) -> bool:
        complete = self.stopped or len(self.trials) >= self.block["trials"]
        return complete and self.in_flight() == 0

    def best(self) -> Trial | None:
        """The best member of the newest generation (None when none has a value)."""
        generation = self.generation()
        scored = [
            (s, n)
            for n in self.trials
            if n // self.pbt["population"] == generation and (s := self.score(n)) is not None
        ]
        if not scored:
            return None
        pick = min if self.block["direction"] == "minimize" else max
        return self.trials[pick(scored)[1]]
