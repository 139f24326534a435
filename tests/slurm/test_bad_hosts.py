"""A host on which attempts keep failing is excluded from the next Slurm submission (real local Slurm).

Two toy tasks kill their own runner (SIGKILL, before any checkpoint: a crash without a recorded
end, what a lost node leaves) on the cluster's node; the coordinator records each runner as lost
(cause ``node_fail``), and its next array excludes that node (``scontrol show job``:
``ExcNodeList``). This cluster has one node, so two things differ from a real cluster, both
because a second node cannot exist here: ``max_excluded_share`` is 1 (at the default 0.25 a
one-node partition excludes nothing), and the resubmission carries ``--hold`` (sbatch refuses a
job whose partition has no node left for it; a held job is accepted, so its ``--exclude`` can be
read back from Slurm). Nothing in the attempts' records is made up: the node name is the one
each runner recorded from ``SLURMD_NODENAME``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from candle_restart.slurm import SlurmBackend
from candle_restart.task import TaskDir
from tests.helpers import ROOT
from tests.slurm.test_slurm_backend import _env, _jobs, _resume, _submit, _sweep, _wait_job


def _node(slurm_conf: str) -> str:
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-p", "debug", "-o", "%N"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert len(out) >= 1, out
    return out[0]


def test_a_node_where_runners_keep_dying_is_excluded_from_the_next_array(
    tmp_path: Path, slurm_conf: str
) -> None:
    node = _node(slurm_conf)
    run_root = tmp_path / "runs"
    variants = [{"index": i, "die_at_start": True} for i in range(2)]
    config = _sweep(tmp_path, "bad", variants)
    sweep = yaml.safe_load(config.read_text())  # the settings' owner: the sweep's restart: block
    sweep["restart"].update(host_bad_ends=2, max_excluded_share=1.0, max_node_failures=5)
    config.write_text(yaml.safe_dump(sweep))
    _submit(config, slurm_conf)
    [first] = _jobs(run_root)
    _wait_job(first)
    starts = [
        e.extras for p in run_root.glob("bad-*") for e in TaskDir(p).events() if e.kind == "start"
    ]
    assert len(starts) == 2 and all(s["node"] == node for s in starts), starts  # Slurm's name of the node
    assert all(isinstance(s.get("queue_seconds"), float) and s.get("allocation_end") for s in starts), starts

    held = SlurmBackend({"partition": "debug", "extra": ["--hold"]})  # see the module docstring
    policy = {k: sweep["restart"][k] for k in ("host_bad_ends", "max_excluded_share", "max_node_failures")}
    outcomes = _resume(run_root, held, **policy)
    assert all(o.acted and o.status.cause == "node_fail" for o in outcomes), outcomes
    jobs = _jobs(run_root)
    assert len(jobs) == 2
    try:
        shown = subprocess.run(
            ["scontrol", "-o", "show", "job", jobs[1]], check=True, capture_output=True, text=True, timeout=60
        ).stdout
        assert f"ExcNodeList={node} " in shown, shown  # what Slurm itself holds for the new array
        [jobid] = [p for p in (run_root / ".slurm").glob("*.jobid") if p.read_text().strip() == jobs[1]]
        assert f"#SBATCH --exclude={node}\n" in jobid.with_suffix(".sbatch").read_text()
        hosts = subprocess.run(
            [sys.executable, "-m", "candle_restart.cli", "status", "--hosts", str(run_root), "--json"],
            cwd=ROOT,
            env=_env(slurm_conf),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert hosts.returncode == 0, hosts.stderr
        [row] = json.loads(hosts.stdout)["hosts"]
        assert row["host"] == node and row["bad"]["node_fail"] == 2 and row["attempts"] == 2, row
        assert row["excluded"] and "excluded (1 of at most 1: 1 of 1 nodes)" in row["why"], row
    finally:
        subprocess.run(["scancel", jobs[1]], check=False, timeout=60)
