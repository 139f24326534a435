"""What goes into a ``ckpt-info.json`` besides the format: who writes it, when, and a commit's key.

The format itself (keys, types, reading and writing) is
`candle_restart.records.ckptinfo.CkptInfo`; this module holds the values the
writer puts in it and the comparisons readers make of it.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from datetime import datetime

from candle_restart.records.ckptinfo import CkptInfo
from candle_restart.runtime.envvars import (
    SLURM_ARRAY_JOB_ID,
    SLURM_ARRAY_TASK_ID,
    SLURM_JOB_ID,
    SLURM_RESTART_COUNT,
)

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

_SLURM_VARS = {
    "job_id": SLURM_JOB_ID,
    "array_job_id": SLURM_ARRAY_JOB_ID,
    "array_task_id": SLURM_ARRAY_TASK_ID,
    "restart_count": SLURM_RESTART_COUNT,
}


def writer_identity() -> dict[str, str | int]:
    """Who is writing: host, pid and the Slurm job ids present in the environment."""
    ident: dict[str, str | int] = {"host": socket.gethostname(), "pid": os.getpid()}
    for key, var in _SLURM_VARS.items():
        if os.environ.get(var):
            ident[key] = os.environ[var]
    return ident


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None when it is None, infinite or NaN (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def commit_key(info: CkptInfo | Mapping[str, object] | None) -> str | None:
    """A key of a checkpoint's info that differs for every commit of a run (None: no checkpoint).

    Attempts of a task compare these to tell whether an attempt committed anything newer.
    ``info`` is the record, or a summary dict with its ``epoch``, ``position`` (as a dict)
    and ``timestamp`` (the runner's); the text is the one earlier releases recorded.
    """
    if not info:
        return None
    if isinstance(info, CkptInfo):
        info = info.to_dict()
    return f"{info.get('epoch')}:{info.get('position')}:{info.get('timestamp')}"


def timestamp(now: datetime) -> str:
    return now.strftime(TIMESTAMP_FORMAT)
