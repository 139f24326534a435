#!/usr/bin/env bash
# Submit a sweep to Slurm as job arrays and keep it going unattended, from a login node.
#
#   workflows/slurm_resubmit.sh configs/my-sweep.yaml
#
# 1. `slurm submit` expands the YAML (executor.kind: slurm; executor.slurm gives partition,
#    walltime, qos, ... and, optionally, self_requeue: true) and submits every task that needs
#    it as ONE job array (--requeue, --signal=B:USR1@signal_seconds, --open-mode=append).
# 2. `resume --backend slurm --watch 300` then runs every 5 minutes until each task is completed
#    or given up: preempted, timed-out and node-failed elements are resubmitted from ckpts/last
#    as one new array of exactly those tasks; a job Slurm requeued itself is left alone; a job
#    cancelled with scancel stays cancelled (add --include-cancelled to resubmit those).
#
# Instead of a long-running watch, a cron line works too (one pass every 10 minutes; the per-task
# locks make overlapping passes safe):
#   */10 * * * *  cd /path/to/project && .venv/bin/candle-restart resume /path/to/run_root --backend slurm >> resume.log 2>&1
set -euo pipefail
config=${1:?usage: $0 SWEEP.yaml}
candle-restart slurm submit "$config"
run_root=$(python -c 'import sys; from candle_restart.sweep import parse_sweep; print(parse_sweep(sys.argv[1]).run_root)' "$config")
candle-restart status "$run_root"
exec candle-restart resume "$run_root" --backend slurm --watch 300
