"""Expanding a sweep into task directories: stable ids, idempotent, edits refused.

Parameter sets are the grid's cartesian product, plus each ``list`` entry,
plus each seeded random sample, each merged over the base ``params`` (one
set of base params when ``vary`` is empty).  Each becomes
``run_root/<name>-<hash of its params>/`` (`candle_restart.task.create_task`).

``run_root/.sweep-<name>.json`` records what defines the sweep (entry or
command, base params, the names of the varied parameters), and, rewritten at
each expansion, the executor's Slurm options (``slurm``) and the ``restart``
policy, which ``candle-restart resume RUN_ROOT`` uses (`recorded_restart`).  Expanding again
with the same definition creates only tasks that are new (a value added to
a grid, more random samples); changing the definition would orphan every
existing task, so it is refused with the key that changed.  Everything is
validated before the first directory is created.
"""

from __future__ import annotations

import itertools
import json
import math
import random as random_module
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candle_restart.ckpt.params import check_writable, parse_params
from candle_restart.errors import CkptError
from candle_restart.records import manifest
from candle_restart.records.manifest import ManifestError, SweepManifest
from candle_restart.runtime import fsio
from candle_restart.sweep.schema import Sweep, SweepError
from candle_restart.task.taskdir import TaskDir, create_task, make_task_id


def _sample(rng: random_module.Random, dist: dict[str, Any]) -> Any:
    kind, arg = next(iter(dist.items()))
    if kind == "choice":
        return rng.choice(arg)
    if kind == "int_uniform":
        return rng.randint(int(arg[0]), int(arg[1]))
    if kind == "log_uniform":
        return math.exp(rng.uniform(math.log(arg[0]), math.log(arg[1])))
    return rng.uniform(float(arg[0]), float(arg[1]))


def parameter_sets(sweep: Sweep) -> list[dict[str, Any]]:
    """Every task's gParameters, in a stable order."""
    varied: list[dict[str, Any]] = []
    if sweep.grid:
        keys = sorted(sweep.grid)
        varied += [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(sweep.grid[k] for k in keys))
        ]
    varied += [dict(x) for x in sweep.explicit]
    if sweep.random:
        rng = random_module.Random(sweep.random.get("seed", 0))
        space = sweep.random["space"]
        varied += [{k: _sample(rng, space[k]) for k in sorted(space)} for _ in range(sweep.random["samples"])]
    return [{**sweep.params, **v} for v in varied] or [dict(sweep.params)]


def _manifest(sweep: Sweep) -> SweepManifest:
    """The manifest of ``sweep`` as this expansion writes it (JSON values only: tuples as lists)."""
    keys = (
        set(sweep.grid) | {k for x in sweep.explicit for k in x} | set((sweep.random or {}).get("space", {}))
    ) | set(sweep.search["space"] if sweep.search else {})
    if sweep.search is not None and sweep.search["pbt"] is not None:  # each generation trains further
        keys.add(sweep.search["pbt"]["epochs_key"])
    params = json.loads(json.dumps(sweep.params))
    slurm = json.loads(json.dumps(sweep.executor.get("slurm", {})))
    restart = json.loads(json.dumps(sweep.restart))
    command = list(sweep.command) if sweep.command is not None else None
    return SweepManifest(sweep.name, sweep.entry, command, params, sorted(keys), slurm, restart)


def _check_unchanged(sweep: Sweep, path: Path) -> bool:
    """False if no manifest exists yet; SweepError if the definition changed."""
    try:
        recorded = SweepManifest.read(path)
    except FileNotFoundError:
        return False
    except ManifestError as exc:
        raise SweepError(exc.where, exc.key, f"{exc.problem}; remove it only if no tasks exist") from None
    current = _manifest(sweep)
    for key, old_value, new_value in (
        ("entry", recorded.entry, current.entry),
        ("command", recorded.command, current.command),
        ("varied", recorded.varied, current.varied),
    ):
        if old_value != new_value:
            raise SweepError(
                str(sweep.source),
                key,
                f"changed from {old_value!r} to {new_value!r} since "
                "the sweep was created; existing tasks would be orphaned (use a new name or run_root)",
            )
    old, new = recorded.params, current.params
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise SweepError(
                str(sweep.source),
                f"params.{key}",
                f"changed from {old.get(key)!r} to "
                f"{new.get(key)!r}; editing a parameter of existing tasks is refused (use a new name)",
            )
    return True


def write_manifest(sweep: Sweep, *, check_only: bool = False) -> None:
    """Check that the run root is writable and the sweep's definition unchanged (SweepError
    if not; nothing written), then (unless ``check_only``) create the run root and (re)write its manifest."""
    try:
        check_writable(sweep.run_root)
    except CkptError as exc:
        raise SweepError(str(sweep.source), "run_root", exc.problem) from None
    path = manifest.manifest_path(sweep.run_root, sweep.name)
    _check_unchanged(sweep, path)
    if check_only:
        return
    sweep.run_root.mkdir(parents=True, exist_ok=True)
    # The executor's Slurm options and the restart policy are recorded too (they may change
    # between runs) so that `candle-restart resume RUN_ROOT [--backend slurm]` submits with the
    # sweep's directives and under the sweep's policy.
    fsio.atomic_write_bytes(path, _manifest(sweep).to_bytes())


def check_parents(sweep: Sweep, task_ids: list[str], parents: list[str | None]) -> None:
    """Each task's parent exists, is none of the sweep's tasks nor leads back to one, and has a
    checkpoint that verifies; SweepError naming the YAML and ``parent`` otherwise (nothing written)."""
    from candle_restart.task.warm import WarmStartError, resolve_parent

    checked: set[str] = set()
    for task_id, parent in zip(task_ids, parents, strict=True):
        if parent is None:
            continue
        try:  # every child's chain of parents; each parent's checkpoint once
            resolve_parent(sweep.run_root / task_id, parent, str(sweep.source), need_checkpoint=parent not in checked)
            checked.add(parent)
        except (CkptError, WarmStartError) as exc:
            raise SweepError(str(sweep.source), "parent", getattr(exc, "problem", str(exc))) from None


def matched_parents(sweep: Sweep, sets: list[dict[str, Any]]) -> list[str | None]:
    """``parent: {sweep, match}``: each parameter set's parent, the one task of that sweep in the
    run root whose parameters equal the set's on every ``match`` key; SweepError naming the YAML
    and ``parent.match`` when a set lacks a key, or when no task or several match it."""
    from candle_restart.coordinator.resume import task_dirs

    match = sweep.parent_match
    assert match is not None
    candidates: list[tuple[str, dict[str, Any]]] = []
    try:
        for task in task_dirs(sweep.run_root) if sweep.run_root.is_dir() else []:
            spec = task.load_spec()
            if spec.sweep == match.sweep:
                candidates.append((task.task_id, dict(spec.params)))
    except CkptError as exc:
        raise SweepError(str(sweep.source), "parent.sweep", f"cannot read the run root's tasks: {exc}") from None
    if not candidates:
        raise SweepError(str(sweep.source), "parent.sweep", f"no task of sweep {match.sweep!r} in {sweep.run_root}")
    parents: list[str | None] = []
    for i, params in enumerate(sets):
        missing = [k for k in match.match if k not in params]
        if missing:
            raise SweepError(str(sweep.source), "parent.match", f"task {i} has no parameter {missing[0]!r}")
        wanted = {k: params[k] for k in match.match}
        found = [tid for tid, theirs in candidates if all(k in theirs and theirs[k] == v for k, v in wanted.items())]
        if len(found) != 1:
            said = ", ".join(f"{k}={v!r}" for k, v in wanted.items())
            problem = (
                f"no task of sweep {match.sweep!r} has {said}"
                if not found
                else f"{len(found)} tasks of sweep {match.sweep!r} have {said} ({', '.join(sorted(found)[:3])}): "
                "add a key to match"
            )
            raise SweepError(str(sweep.source), "parent.match", f"{problem} (task {i} of this sweep)")
        parents.append(found[0])
    return parents


@dataclass
class Expansion:
    tasks: list[TaskDir]
    created: int


def expand(sweep: Sweep) -> Expansion:
    """Create the sweep's task directories (only the missing ones); validate everything first."""
    sets = parameter_sets(sweep)
    for i, params in enumerate(sets):
        try:
            parse_params(params, where=f"{sweep.source}: task {i} params")
        except CkptError as exc:
            raise SweepError(exc.where, exc.key, exc.problem) from None
    ids = [make_task_id(sweep.name, params) for params in sets]
    parents = matched_parents(sweep, sets) if sweep.parent_match else [sweep.parent] * len(sets)
    if any(parents):
        check_parents(sweep, ids, parents)
    write_manifest(sweep)
    tasks, created = [], 0
    for task_id, params, parent in zip(ids, sets, parents, strict=True):
        created += not (sweep.run_root / task_id / "task.json").exists()
        tasks.append(
            create_task(
                sweep.run_root,
                params,
                entry=sweep.entry,
                command=sweep.command,
                sweep=sweep.name,
                task_id=task_id,
                python_path=sweep.python_path,
                dir_flags=sweep.dir_flags,
                parent=parent,
            )
        )
    return Expansion(tasks, created)


def manifests(run_root: Path) -> Iterator[tuple[Path, SweepManifest]]:
    """Each sweep manifest of ``run_root`` (``.sweep-<name>.json``, by name), read by
    `candle_restart.records.manifest`.  A manifest that cannot be read, or is not one, raises
    SweepError naming it; one removed meanwhile is skipped."""
    try:
        yield from manifest.read_all(run_root)
    except ManifestError as exc:
        raise SweepError(exc.where, exc.key, exc.problem) from None


def recorded_restart(run_root: Path) -> tuple[dict[str, float], Path | None]:
    """The ``restart`` policy the sweep of ``run_root`` recorded, and the manifest it came from.

    ``({}, None)`` when no manifest records one (a run root made by hand, or by an older
    version).  Sweeps sharing a run root that record different policies raise SweepError:
    which one applies cannot be guessed (give the policy as flags).  A manifest that cannot
    be read or holds a bad policy raises SweepError naming it.
    """
    from candle_restart.sweep.schema import check_restart_manifest

    found: dict[str, float] = {}
    source: Path | None = None
    for path, record in manifests(run_root):
        if record.restart is None:
            continue
        restart = check_restart_manifest(record.restart, path)
        if source is not None and restart != found:
            raise SweepError(
                str(path),
                "restart",
                f"differs from {source.name}'s; give --max-failures, --max-preemptions and --backoff",
            )
        found, source = restart, path
    return found, source
