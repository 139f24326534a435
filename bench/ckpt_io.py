"""Checkpoint I/O against the disk: committed write throughput and restart read speed.

A Dense model of ``PARAMS`` parameters (default 25M: with Adam's two moments,
each of the two checkpoint files holds about 300 MB, 600 MB in all) in the
directory ``BENCH_TMP`` (default: the system's temporary directory).
Alternating, ``REPEATS`` times, in the same run:

* write: ``save_epoch`` + ``wait_for_commit`` (snapshot, write, checksum,
  fsync, rename, links) vs ``dd if=/dev/zero bs=8M conv=fsync`` of the same
  number of bytes into the same directory; ratio = our MB/s over dd's
  (goal: at least 0.8);
* restart: ``restart`` of a fresh model (find, verify every CRC-32, load
  the state) vs reading the same files once, both after evicting the files
  from the page cache (``posix_fadvise(DONTNEED)``); ratio = read time over
  restart time (goal: at least 0.8).

Usage: ``python bench/ckpt_io.py [PARAMS [REPEATS]]``; prints one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import dense_model, drop_cache, files_under, median

GOAL = 0.8
CHUNK = 8 * 1024 * 1024


def dd(path: Path, nbytes: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={path}", f"bs={CHUNK}", f"count={-(-nbytes // CHUNK)}", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


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
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    model = dense_model(n_params)
    writes, dds, restarts, reads = [], [], [], []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        params = {
            "epochs": 10**6,
            "ckpt_directory": f"{tmp}/ckpts",
            "ckpt_save_best": False,
            "ckpt_checksum": True,
            "ckpt_keep_limit": 1,
        }
        ckpt = CandleCkptKeras(params, logger=None)
        ckpt.set_model(model)
        ckpt.on_train_begin()  # inside a training, commits run in the background
        ckpt.save_epoch(1)  # allocates the host buffers; not timed
        ckpt.wait_for_commit()
        nbytes = 0
        for i in range(repeats):
            start = time.perf_counter()
            ckpt.save_epoch(i + 2)
            ckpt.wait_for_commit()
            writes.append(time.perf_counter() - start)
            files = files_under(Path(tmp) / "ckpts" / "epochs" / f"{i + 2:03d}")
            nbytes = sum(p.stat().st_size for p in files)
            dds.append(dd(Path(tmp) / "dd.bin", nbytes))
            fresh = dense_model(n_params)
            drop_cache(files)
            start = time.perf_counter()
            CandleCkptKeras(params, logger=None).restart(fresh)
            restarts.append(time.perf_counter() - start)
            reads.append(cold_read(files))
        ckpt.on_train_end()
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
            "goal": f">= {GOAL}",
            "met": restart_ratio >= GOAL,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
