"""Checkpoint I/O against the disk: committed write throughput and restart read speed.

A Dense model of ``PARAMS`` parameters (default 25M: with Adam's two moments,
a checkpoint holds about 300 MB, each tensor once) in the
directory ``BENCH_TMP`` (default: the system's temporary directory).
Alternating, ``REPEATS`` times, in the same run:

* write: ``save_epoch`` + ``wait_for_commit`` with the default settings
  (snapshot, write, fsync, rename, links; the previous checkpoint is deleted
  outside the timing, as dd's file is) vs ``dd if=/dev/zero bs=8M
  conv=fsync`` of the same number of bytes into the same directory; ratio =
  our MB/s over dd's (goal: at least 0.8).  Two untimed checkpoints come
  first: the first allocates the snapshot buffers, and on our VMs the first
  touch of a memory page costs about 2.5 s per GB, so until deleted
  checkpoints have returned pages to the page cache every write pays it;
* restart: ``restart`` of a fresh model from a checkpoint written with
  ``ckpt_checksum`` (find, verify every CRC-32, load the state) vs reading the same files once, both after evicting the files
  from the page cache (``posix_fadvise(DONTNEED)``); ratio = read time over
  restart time (goal: at least 0.9; the model file's CRC-32 is checked while the load
  reads it, so each file is read once).

Usage: ``python bench/ckpt_io.py [PARAMS [REPEATS]]``; prints one JSON object.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import CHUNK, dd, dense_model, drop_cache, files_under, median

GOAL = 0.8
RESTART_GOAL = 0.9  # restart within 1/0.9 of a cold read of the same files


def cold_read(paths: list[Path]) -> float:
    drop_cache(paths)
    start = time.perf_counter()
    buffer = bytearray(CHUNK)
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass
    return time.perf_counter() - start


def main() -> None:
    from candle_restart.keras import CandleCkptKeras

    n_params = int(sys.argv[1]) if len(sys.argv) > 1 else 25_000_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    model = dense_model(n_params)
    writes, dds, restarts, reads = [], [], [], []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        params = {
            "epochs": 10**6,
            "ckpt_directory": f"{tmp}/ckpts",
            "ckpt_save_best": False,  # the default keep limit (5) deletes nothing inside the timing
        }
        ckpt = CandleCkptKeras(params, logger=None)
        ckpt.set_model(model)
        ckpt.on_train_begin()  # inside a training, commits run in the background
        for epoch in (1, 2):  # untimed: allocate the host buffers, let the page cache settle
            ckpt.save_epoch(epoch)
            ckpt.wait_for_commit()
        ckpt.delete(1)
        nbytes = 0
        for epoch in range(3, 3 + repeats):
            start = time.perf_counter()
            ckpt.save_epoch(epoch)
            ckpt.wait_for_commit()
            writes.append(time.perf_counter() - start)
            nbytes = sum(p.stat().st_size for p in files_under(ckpt.layout.epoch_dir(epoch)))
            ckpt.delete(epoch - 1)  # untimed, as dd's file is removed untimed
            dds.append(dd(Path(tmp) / "dd.bin", nbytes))
        ckpt.on_train_end()

        # Restart verifies CRCs where they are recorded: write a checkpoint that records them.
        checked = {**params, "ckpt_directory": f"{tmp}/checked", "ckpt_checksum": True}
        writer = CandleCkptKeras(checked, logger=None)
        writer.set_model(model)
        writer.save_epoch(1)
        files = files_under(writer.layout.epoch_dir(1))
        for _ in range(repeats):
            fresh = dense_model(n_params)
            drop_cache(files)
            start = time.perf_counter()
            CandleCkptKeras(checked, logger=None).restart(fresh)
            restarts.append(time.perf_counter() - start)
            reads.append(cold_read(files))
            del fresh  # its memory goes back before the next model is built (first touches are slow here)
            gc.collect()
    mb = nbytes / 2**20
    write_ratio = median(dds) / median(writes)
    restart_ratio = median(reads) / median(restarts)
    result = {
        "bench": "ckpt_io",
        "cores": os.cpu_count(),
        "params": model.count_params(),
        "checkpoint_mb": round(mb, 1),
        "repeats": repeats,
        "write": {
            "ours_s": median(writes),
            "ours_mb_s": round(mb / median(writes), 1),
            "dd_fsync_s": median(dds),
            "dd_mb_s": round(mb / median(dds), 1),
            "ratio": round(write_ratio, 3),
            "goal": f">= {GOAL}",
            "met": write_ratio >= GOAL,
        },
        "restart": {
            "ours_s": median(restarts),
            "cold_read_s": median(reads),
            "ratio": round(restart_ratio, 3),
            "goal": f">= {RESTART_GOAL}",
            "met": restart_ratio >= RESTART_GOAL,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
