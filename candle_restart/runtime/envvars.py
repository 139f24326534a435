"""The names of the environment variables the project reads or sets, each stated once here.

Ours (``CANDLE_RESTART_*``):

* `PARAMS_ENV`: extra ``ckpt_*`` keys for a benchmark whose parser cannot take them
  (`candle_restart.ckpt.envparams`);
* `CKPT_DIRECTORY_ENV`, `OUTPUT_DIR_ENV`: the task's ``ckpts/`` and output directory, set by
  the task runner for every task;
* `TASK_DIR_ENV`, `ATTEMPT_ENV`: the task directory and the attempt number, set by the runner;
* `HEARTBEAT_ENV`: the task's heartbeat file, set by the runner (`candle_restart.records.heartbeat`);
* `EXIT_SECONDS_ENV`: the slowest exit (stop to process end) of the task's earlier attempts,
  measured by the runner; the halt margin covers it (`candle_restart.runtime.deadline.halt_seconds`);
* `GENERATION_ENV`: the submission generation a backend gives the runner it starts;
* `ON_PREEMPT_ENV`: a command the runner runs once a preempted attempt's checkpoint is
  committed (a Slurm array element requeueing itself);
* `LEASE_ENV`: overrides every lease's length (tests, slow filesystems);
* `TEST_PAUSE_ENV`: tests only: where a process pauses so a test can kill it there (`pause_point`).

The schedulers' (read only): Slurm's job and array ids, restart count and end time; PBS's
walltime.
"""

from __future__ import annotations

import os
import signal

PARAMS_ENV = "CANDLE_RESTART_PARAMS"
CKPT_DIRECTORY_ENV = "CANDLE_RESTART_CKPT_DIRECTORY"
OUTPUT_DIR_ENV = "CANDLE_RESTART_OUTPUT_DIR"
TASK_DIR_ENV = "CANDLE_RESTART_TASK_DIR"
ATTEMPT_ENV = "CANDLE_RESTART_ATTEMPT"
HEARTBEAT_ENV = "CANDLE_RESTART_HEARTBEAT"
EXIT_SECONDS_ENV = "CANDLE_RESTART_EXIT_SECONDS"
GENERATION_ENV = "CANDLE_RESTART_GENERATION"
ON_PREEMPT_ENV = "CANDLE_RESTART_ON_PREEMPT"
LEASE_ENV = "CANDLE_RESTART_LEASE_SECONDS"
TEST_PAUSE_ENV = "CANDLE_RESTART_TEST_PAUSE_AT"

SLURM_JOB_ID = "SLURM_JOB_ID"
SLURM_JOB_END_TIME = "SLURM_JOB_END_TIME"  # epoch seconds; Slurm 23.02 and later
SLURM_ARRAY_JOB_ID = "SLURM_ARRAY_JOB_ID"
SLURM_ARRAY_TASK_ID = "SLURM_ARRAY_TASK_ID"
SLURM_RESTART_COUNT = "SLURM_RESTART_COUNT"
SLURMD_NODENAME = "SLURMD_NODENAME"  # the node's name to Slurm (what --exclude takes)
PBS_WALLTIME = "PBS_WALLTIME"


def pause_point(name: str) -> None:
    """Test-only fail-point: a process whose environment names ``name`` in `TEST_PAUSE_ENV` stops
    itself (SIGSTOP) there, so a test can kill it with SIGKILL at that instant."""
    if os.environ.get(TEST_PAUSE_ENV) == name:
        os.kill(os.getpid(), signal.SIGSTOP)
