"""Sweep YAML validation (file:line: key: problem, nothing created) and stable expansion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from candle_restart.sweep import SweepError, expand, parameter_sets, parse_sweep

GOOD = """\
name: s
run_root: runs
entry: candle_restart.examples.regression:run
params:
  epochs: 2
vary:
  grid:
    learning_rate: [0.1, 0.01]
    hidden: [8, 16]
  list:
    - {dropout: 0.5}
  random:
    samples: 2
    seed: 3
    space:
      dropout: {uniform: [0.0, 0.5]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def test_parameter_sets_cover_grid_list_and_seeded_samples(tmp_path: Path) -> None:
    sweep = parse_sweep(_write(tmp_path, GOOD))
    sets = parameter_sets(sweep)
    assert len(sets) == 4 + 1 + 2 and all(p["epochs"] == 2 for p in sets)
    assert {(p.get("learning_rate"), p.get("hidden")) for p in sets[:4]} == {
        (0.1, 8),
        (0.1, 16),
        (0.01, 8),
        (0.01, 16),
    }
    assert parameter_sets(parse_sweep(_write(tmp_path, GOOD))) == sets  # seeded: the same every time
    assert sweep.run_root == tmp_path / "runs"


@pytest.mark.parametrize(
    "text, line, key, fragment",
    [
        (GOOD.replace("params:", "parms:"), 4, "parms", "unknown key"),
        (GOOD.replace("[8, 16]", "[]"), 9, "vary.grid.hidden", "non-empty list"),
        (GOOD.replace("entry: candle_restart.examples.regression:run\n", ""), 1, "entry", "exactly one of"),
        (GOOD.replace("regression:run", "nothere:run"), 3, "entry", "cannot be imported"),
        (GOOD.replace("samples: 2", "samples: two"), 13, "vary.random.samples", "integer >= 1"),
        (
            GOOD.replace("{uniform: [0.0, 0.5]}", "{gaussian: [0, 1]}"),
            16,
            "vary.random.space.dropout.gaussian",
            "unknown key",
        ),
        (GOOD + "executor: {kind: cloud}\n", 17, "executor.kind", "local, slurm, pbspro, lsf, flux"),
        (GOOD + "restart: {max_failures: -1}\n", 17, "restart.max_failures", "integer >= 0"),
        (GOOD.replace("name: s", "name: ../evil"), 1, "name", "safe name"),
        (
            GOOD.replace("epochs: 2", "epochs: 2\n  ckpt_keep_limit: 0"),
            None,
            "ckpt_keep_limit",
            "integer >= 1",
        ),
        ("name: s\n  bad: [indent\n", 2, None, "is not valid YAML"),
        (GOOD + "executor: {kind: slurm, slurm: {nodes: two}}\n", 17, "executor.slurm.nodes", "integer >= 1"),
        (
            GOOD + "executor: {kind: slurm, slurm: {walltime: [1]}}\n",
            17,
            "executor.slurm.walltime",
            "a string",
        ),
        (GOOD + "executor: {slurm: {extra: [cpus=2]}}\n", 17, "executor.slurm.extra", "sbatch options"),
        (
            GOOD.replace("entry: candle_restart.examples.regression:run", "command: [./no-such-bench.sh]"),
            3,
            "command",
            "does not exist or is not executable",
        ),
    ],
)
def test_invalid_sweeps_give_one_line_and_create_nothing(
    tmp_path: Path, text: str, line: int | None, key: str | None, fragment: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SweepError) as err:
        expand(parse_sweep(path))
    message = str(err.value)
    assert "\n" not in message and fragment in message
    if line is not None:
        assert message.startswith(f"{path}:{line}: " + (f"{key}: " if key else ""))
    elif key:
        assert f": {key}: " in message
    assert not (tmp_path / "runs").exists()


def test_unwritable_run_root_is_refused_before_anything(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    path = _write(tmp_path, GOOD.replace("run_root: runs", "run_root: file/runs"))
    with pytest.raises(SweepError, match=r"run_root: .*not a directory"):
        expand(parse_sweep(path))


def test_expansion_is_idempotent_grows_with_the_grid_and_refuses_edits(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    first = expand(parse_sweep(path))
    assert first.created == 7 and len({t.task_id for t in first.tasks}) == 7
    assert expand(parse_sweep(path)).created == 0
    _write(tmp_path, GOOD.replace("[0.1, 0.01]", "[0.1, 0.01, 0.001]"))
    grown = expand(parse_sweep(path))
    assert grown.created == 2 and len(grown.tasks) == 9
    assert {t.task_id for t in first.tasks} <= {t.task_id for t in grown.tasks}
    _write(tmp_path, GOOD.replace("epochs: 2", "epochs: 3"))
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    with pytest.raises(SweepError, match=r"params.epochs: changed from 2 to 3; editing a parameter"):
        expand(parse_sweep(path))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before
    task = json.loads((first.tasks[0].task_file).read_text())
    assert task["sweep"] == "s" and task["entry"] == "candle_restart.examples.regression:run"


def test_the_slurm_backend_reads_a_manifests_options_through_the_record_and_one_shared_check(
    tmp_path: Path,
) -> None:
    from candle_restart.records.manifest import ManifestError
    from candle_restart.slurm import read_options

    path = _write(tmp_path, GOOD + "executor: {kind: slurm, slurm: {partition: debug, nodes: 2}}\n")
    expand(parse_sweep(path))
    assert read_options(tmp_path / "runs") == {"partition": "debug", "nodes": 2}
    [manifest] = (tmp_path / "runs").glob(".sweep-*.json")
    recorded = json.loads(manifest.read_text())
    for bad, key, problem in (
        ({"nodes": "two"}, "slurm.nodes", "must be an integer >= 1, got 'two'"),
        ({"partition": "a b"}, "slurm.partition", "must be one word without quotes or shell characters"),
        ({"nodez": 1}, "slurm.nodez", "unknown key"),
        ([1], "slurm", "must be a JSON object, got list"),
    ):
        manifest.write_text(json.dumps({**recorded, "slurm": bad}))
        before = manifest.read_bytes()
        with pytest.raises(ManifestError) as refused:
            read_options(tmp_path / "runs")
        assert str(refused.value).startswith(f"{manifest}: {key}: {problem}"), refused.value
        assert "\n" not in str(refused.value) and manifest.read_bytes() == before


def test_the_slurm_package_imports_no_sweep_code() -> None:
    import ast

    import candle_restart.slurm

    for source in Path(candle_restart.slurm.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            assert not any(n.startswith("candle_restart.sweep") for n in names), f"{source}: imports {names}"
