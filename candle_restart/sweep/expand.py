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

from candle_restart.ckpt import fsio
from candle_restart.ckpt.params import check_writable, parse_params
from candle_restart.errors import CkptError
from candle_restart.records.jsonio import JsonFileError, read_json
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


def _definition(sweep: Sweep) -> dict[str, Any]:
    keys = (
        set(sweep.grid) | {k for x in sweep.explicit for k in x} | set((sweep.random or {}).get("space", {}))
    )
    return {
        "name": sweep.name,
        "entry": sweep.entry,
        "command": sweep.command,
        "params": sweep.params,
        "varied": sorted(keys),
    }


def _check_unchanged(sweep: Sweep, manifest: Path) -> bool:
    """False if no manifest exists yet; SweepError if the definition changed."""
    try:
        recorded = read_json(manifest)
    except FileNotFoundError:
        return False
    except JsonFileError as exc:
        raise SweepError(exc.where, None, f"{exc.problem}; remove it only if no tasks exist") from None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("params", {}), dict):
        raise SweepError(
            str(manifest), None, "must hold a JSON object with params; remove it only if no tasks exist"
        )
    current = json.loads(json.dumps(_definition(sweep)))
    for key in ("entry", "command", "varied"):
        if recorded.get(key) != current[key]:
            raise SweepError(
                str(sweep.source),
                key,
                f"changed from {recorded.get(key)!r} to {current[key]!r} since "
                "the sweep was created; existing tasks would be orphaned (use a new name or run_root)",
            )
    old, new = recorded.get("params", {}), current["params"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise SweepError(
                str(sweep.source),
                f"params.{key}",
                f"changed from {old.get(key)!r} to "
                f"{new.get(key)!r}; editing a parameter of existing tasks is refused (use a new name)",
            )
    return True


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
    try:
        check_writable(sweep.run_root)
    except CkptError as exc:
        raise SweepError(str(sweep.source), "run_root", exc.problem) from None
    manifest = sweep.run_root / f".sweep-{sweep.name}.json"
    _check_unchanged(sweep, manifest)
    sweep.run_root.mkdir(parents=True, exist_ok=True)
    # The executor's Slurm options and the restart policy are recorded too (they may change
    # between runs) so that `candle-restart resume RUN_ROOT [--backend slurm]` submits with the
    # sweep's directives and under the sweep's policy.
    record = {**_definition(sweep), "slurm": sweep.executor.get("slurm", {}), "restart": sweep.restart}
    fsio.atomic_write_bytes(manifest, (json.dumps(record, indent=1) + "\n").encode())
    tasks, created = [], 0
    for params in sets:
        task_id = make_task_id(sweep.name, params)
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
            )
        )
    return Expansion(tasks, created)


def read_manifests(run_root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each sweep manifest of ``run_root`` (``.sweep-<name>.json``, by name) and its object; the
    one reader of them.  A manifest that cannot be read, or holds no JSON object, raises
    SweepError naming it; one removed meanwhile is skipped."""
    for manifest in sorted(Path(run_root).glob(".sweep-*.json")):
        try:
            data = read_json(manifest)
        except FileNotFoundError:
            continue
        except JsonFileError as exc:
            raise SweepError(exc.where, None, exc.problem) from None
        if not isinstance(data, dict):
            raise SweepError(str(manifest), None, f"must hold a JSON object, got {type(data).__name__}")
        yield manifest, data


def recorded_restart(run_root: Path) -> tuple[dict[str, Any], Path | None]:
    """The ``restart`` policy the sweep of ``run_root`` recorded, and the manifest it came from.

    ``({}, None)`` when no manifest records one (a run root made by hand, or by an older
    version).  Sweeps sharing a run root that record different policies raise SweepError:
    which one applies cannot be guessed (give the policy as flags).  A manifest that cannot
    be read or holds a bad policy raises SweepError naming it.
    """
    from candle_restart.sweep.schema import check_restart_manifest

    found: dict[str, Any] = {}
    source: Path | None = None
    for manifest, data in read_manifests(run_root):
        if data.get("restart") is None:
            continue
        restart = check_restart_manifest(data["restart"], manifest)
        if source is not None and restart != found:
            raise SweepError(
                str(manifest),
                "restart",
                f"differs from {source.name}'s; give --max-failures, --max-preemptions and --backoff",
            )
        found, source = restart, manifest
    return found, source
