"""A Parsl workflow you can copy: expand a sweep, run every task as a Parsl app, resume until done.

    python workflows/parsl_sweep.py configs/demo.yaml

This is `candle-restart sweep run` written out in the open, to adapt: swap the
config for your cluster's (`candle_restart.parsl.configs.slurm_config`), add
your own apps after the training ones, or change the restart policy.
"""

from __future__ import annotations

import sys
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

import parsl

from candle_restart.coordinator import resume
from candle_restart.coordinator.report import summary
from candle_restart.parsl import ParslBackend
from candle_restart.parsl.configs import local_config, shell_safe_run_dir
from candle_restart.sweep import expand, parse_sweep
from candle_restart.sweep.run import policy_of


def main(config_path: str) -> int:
    sweep = parse_sweep(config_path)  # one clear line and nothing created if the YAML is wrong
    tasks = expand(sweep).tasks  # one task directory per parameter set; idempotent
    policy = policy_of(sweep)  # the YAML's restart: over Policy's defaults
    backend = ParslBackend()  # each task runs `python -m candle_restart.task DIR` in a Parsl bash_app
    ids = {t.task_id for t in tasks}
    # Parsl puts its run directory into shell commands unquoted: a path with a space goes through a link.
    with (
        shell_safe_run_dir(sweep.run_root / ".parsl") as run_dir,
        parsl.load(local_config(Path(run_dir), policy, max_workers=2)),
    ):
        while True:
            outcomes = resume(sweep.run_root, backend, policy, log=print, only=ids)
            print(summary([o.status for o in outcomes]))
            if all(o.final for o in outcomes):  # every task completed or given up
                break
            if backend.pending():
                wait(backend.pending(), timeout=10, return_when=FIRST_COMPLETED)
    return 0 if all(o.status.state == "completed" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "configs/demo.yaml"))
