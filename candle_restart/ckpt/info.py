"""``ckpt-info.json``: what one committed checkpoint is, in a file CANDLE's tools can read.

Contract:

* Every key CANDLE writes keeps its name, type and meaning: ``epoch``
  (1-based int: the number of finished epochs, i.e. ``initial_epoch`` for
  ``fit``), ``save_best_metric``, ``best_metric_last`` (running best; null
  while there is none), ``model_file``, ``checksum`` (CRC-32 of the model
  file as a decimal string, ``"__DISABLED__"`` when off), ``timestamp``
  (local ``%Y-%m-%d %H:%M:%S``), ``time_elapsed`` (``"__FIRST__"`` on a
  process's first write, else seconds since its previous write), ``metadata``.
* Additions (`SCHEMA_VERSION` 1): ``schema_version``, ``epochs`` (maximum),
  ``complete``, ``best_epoch``, ``best_mode`` (min|max), ``files`` (every file
  of the checkpoint: size and CRC-32 or null), ``state_file``, ``position``
  (null, or ``{"epoch", "batch"}`` for a checkpoint taken inside an epoch),
  ``writer`` (host, pid, Slurm job ids where set).
* Strict JSON: never ``Infinity`` or ``NaN`` (non-finite floats become null).
* `read_info` accepts files CANDLE wrote (no additions, ``Infinity`` allowed)
  and rejects anything of the wrong shape with `CorruptCheckpointError`; an
  I/O error that says nothing of the content (EIO, EACCES, ESTALE) raises
  `CheckpointIOError` instead.
"""

from __future__ import annotations

import json
import math
import os
import socket
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from candle_restart.errors import CheckpointIOError, CorruptCheckpointError
from candle_restart.records.jsonio import JsonFileError, read_json

SCHEMA_VERSION = 1
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
FIRST = "__FIRST__"

_SLURM_VARS = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "restart_count": "SLURM_RESTART_COUNT",
}


def writer_identity() -> dict[str, Any]:
    """Who is writing: host, pid and the Slurm job ids present in the environment."""
    ident: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
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


def commit_key(info: dict[str, Any] | None) -> str | None:
    """A key of a checkpoint's info that differs for every commit of a run (None: no checkpoint).

    Attempts of a task compare these to tell whether an attempt committed anything newer.
    """
    if not info:
        return None
    return f"{info.get('epoch')}:{info.get('position')}:{info.get('timestamp')}"


def dumps(info: dict[str, Any]) -> bytes:
    """Serialise ``info`` as strict JSON (raises ValueError on NaN/Infinity)."""
    return (json.dumps(info, indent=1, allow_nan=False) + "\n").encode()


def timestamp(now: datetime) -> str:
    return now.strftime(TIMESTAMP_FORMAT)


def safe_relative(name: str) -> bool:
    """True if ``name`` is a relative path that stays inside its directory."""
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def _fail(path: Path, key: str | None, problem: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(str(path), key, problem)


def _check_int(path: Path, info: dict[str, Any], key: str, minimum: int) -> None:
    value = info.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(path, key, f"must be an integer >= {minimum}, got {value!r}")


def validate(info: Any, path: Path) -> dict[str, Any]:
    """Check the shape of a parsed ``ckpt-info.json``; return it or raise CorruptCheckpointError."""
    if not isinstance(info, dict):
        raise _fail(path, None, f"must hold a JSON object, got {type(info).__name__}")
    _check_int(path, info, "epoch", 0)
    best = info.get("best_metric_last")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        raise _fail(path, "best_metric_last", f"must be a number or null, got {best!r}")
    model_file = info.get("model_file")
    if not isinstance(model_file, str) or not safe_relative(model_file):
        raise _fail(path, "model_file", f"must be a file name inside the checkpoint, got {model_file!r}")
    if not isinstance(info.get("checksum", ""), str):
        raise _fail(path, "checksum", f"must be a string, got {info['checksum']!r}")
    if "epochs" in info:
        _check_int(path, info, "epochs", 0)
    files = info.get("files")
    if files is not None:
        if not isinstance(files, dict):
            raise _fail(path, "files", "must be an object of file name -> {size, crc32}")
        for name, entry in files.items():
            if not safe_relative(name):
                raise _fail(path, "files", f"names a path outside the checkpoint: {name!r}")
            if not isinstance(entry, dict) or not isinstance(entry.get("size"), int):
                raise _fail(path, "files", f"entry {name!r} must have an integer size")
            if entry.get("crc32") is not None and not isinstance(entry["crc32"], str):
                raise _fail(path, "files", f"entry {name!r}: crc32 must be a string or null")
    state_file = info.get("state_file")
    if state_file is not None and (not isinstance(state_file, str) or not safe_relative(state_file)):
        raise _fail(path, "state_file", f"must be a file name inside the checkpoint, got {state_file!r}")
    position = info.get("position")
    if position is not None and not (
        isinstance(position, dict) and all(isinstance(position.get(k), int) for k in ("epoch", "batch"))
    ):
        raise _fail(path, "position", f"must be null or {{epoch, batch}} integers, got {position!r}")
    return info


def read_info(path: Path) -> dict[str, Any]:
    """Read and validate one ``ckpt-info.json`` (ours or CANDLE's)."""
    try:
        info = read_json(path)
    except FileNotFoundError:
        raise _fail(path, None, "is missing") from None
    except JsonFileError as exc:
        if exc.transient:  # EIO, EACCES, ESTALE...: the file may be fine
            raise CheckpointIOError(str(path), None, exc.problem) from None
        raise _fail(path, None, exc.problem) from None
    return validate(info, path)
