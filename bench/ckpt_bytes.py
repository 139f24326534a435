"""Bytes a checkpoint writes against the model's state, and its write speed against ``dd``.

* bytes: a Dense model of ``BYTES_PARAMS`` parameters (default 2M) with Adam
  (weights and two moments); ratio = bytes of one committed checkpoint (every
  file of ``epochs/NNN``) over the bytes of the model's and optimizer's
  variables (goal: at most 1.05; the two-copy format wrote about 2.0).
* write: a Dense model of ``PARAMS`` parameters (default 10M, about 120 MB a
  checkpoint), ``save_epoch`` + ``wait_for_commit`` with the default settings
  vs ``dd if=/dev/zero bs=8M conv=fsync`` of the same byte count into the same
  directory, alternating, ``REPEATS`` times after two untimed checkpoints
  (see ``bench/ckpt_io.py`` for why); ratio = our MB/s over dd's (goal: at
  least 0.8).  Once on the local disk (``BENCH_TMP``, default the system's
  temporary directory) and once on the project's FUSE fault filesystem
  (``tests/faultfs``) throttled to 300 MB/s of writes, as a slow shared
  filesystem; where FUSE cannot be mounted its entry says why.

Usage: ``python bench/ckpt_bytes.py [PARAMS [REPEATS]]``; prints one JSON object.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.faultfs
from _util import dd, dense_model, files_under, median

BYTES_GOAL = 1.05
SPEED_GOAL = 0.8
THROTTLE = 300e6  # bytes/s


def state_bytes(model: Any) -> int:
    import numpy as np

    return sum(np.asarray(v).nbytes for v in [*model.variables, *model.optimizer.variables])


def _callback(directory: Path) -> Any:
    from candle_restart.keras import CandleCkptKeras

    # The default keep limit (5) deletes nothing here: the bench deletes each previous checkpoint
    # itself, untimed, as dd's file is (a keep limit of 1 would delete it inside the timed commit).
    params = {"epochs": 10**6, "ckpt_directory": str(directory), "ckpt_save_best": False}
    return CandleCkptKeras(params, logger=None)


def bytes_ratio(n_params: int, directory: Path) -> dict[str, Any]:
    model = dense_model(n_params)
    ckpt = _callback(directory)
    ckpt.set_model(model)
    ckpt.save_epoch(1)
    files = {p.name: p.stat().st_size for p in files_under(ckpt.layout.epoch_dir(1))}
    written, state = sum(files.values()), state_bytes(model)
    ratio = written / state
    return {
        "params": model.count_params(),
        "state_bytes": state,
        "written_bytes": written,
        "files": files,
        "ratio": round(ratio, 4),
        "goal": f"<= {BYTES_GOAL}",
        "met": ratio <= BYTES_GOAL,
    }


def write_speed(model: Any, directory: Path, repeats: int) -> dict[str, Any]:
    """Our committed writes vs dd's, alternating, in ``directory``."""
    ckpt = _callback(directory / "ckpts")
    ckpt.set_model(model)
    ckpt.on_train_begin()  # inside a training, commits run in the background
    writes, dds, nbytes = [], [], 0
    try:
        for epoch in (1, 2):  # untimed: allocate the host buffers, let the page cache settle
            ckpt.save_epoch(epoch)
            ckpt.wait_for_commit()
        ckpt.delete(1)
        for epoch in range(3, 3 + repeats):
            start = time.perf_counter()
            ckpt.save_epoch(epoch)
            ckpt.wait_for_commit()
            writes.append(time.perf_counter() - start)
            nbytes = sum(p.stat().st_size for p in files_under(ckpt.layout.epoch_dir(epoch)))
            ckpt.delete(epoch - 1)  # untimed, as dd's file is removed untimed
            dds.append(dd(directory / "dd.bin", nbytes))
    finally:
        ckpt.on_train_end()
    mb = nbytes / 2**20
    ratio = median(dds) / median(writes)
    return {
        "checkpoint_mb": round(mb, 1),
        "ours_s": median(writes),
        "ours_mb_s": round(mb / median(writes), 1),
        "dd_fsync_s": median(dds),
        "dd_mb_s": round(mb / median(dds), 1),
        "ratio": round(ratio, 3),
        "goal": f">= {SPEED_GOAL}",
        "met": ratio >= SPEED_GOAL,
    }


@contextlib.contextmanager
def throttled(tmp: Path) -> Iterator[Path | str]:
    """A directory on the fault filesystem throttled to `THROTTLE` bytes/s of writes, or why there is none."""
    from tests.faultfs.control import FaultFSError, fuse_unavailable, mount_faultfs

    reason = fuse_unavailable()
    if reason:
        yield reason
        return
    with contextlib.ExitStack() as stack:
        try:
            fs = stack.enter_context(mount_faultfs(tmp / "backing", tmp / "mnt"))
        except FaultFSError as exc:
            yield f"the fault filesystem cannot be mounted here: {exc}"
            return
        fs.throttle(write_bps=THROTTLE)
        yield fs.path()


def main() -> None:
    n_params = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    result: dict[str, Any] = {"bench": "ckpt_bytes", "cores": os.cpu_count(), "repeats": repeats}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as name:
        tmp = Path(name)
        result["bytes"] = bytes_ratio(int(os.environ.get("BYTES_PARAMS", 2_000_000)), tmp / "bytes")
        model = dense_model(n_params)
        result["params"] = model.count_params()
        (tmp / "local").mkdir()
        result["write_local"] = write_speed(model, tmp / "local", repeats)
        with throttled(tmp / "fuse") as where:
            if isinstance(where, str):
                result["write_throttled"] = {"skipped": where}
            else:
                entry = write_speed(model, where, repeats)
                result["write_throttled"] = {"throttle_mb_s": round(THROTTLE / 2**20, 1), **entry}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
