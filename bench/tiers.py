"""Two checkpoint tiers against one, with the shared tier throttled to 100 MB/s.

The shared tier is the fault filesystem of ``tests/faultfs`` (a FUSE passthrough, needs
root and /dev/fuse) throttled to ``SHARED_BPS`` for reads and writes; the node-local
tier is ``/dev/shm`` (else the temporary directory).  A Dense model of about
``PARAMS`` parameters (Adam built) trains with ``CandleCkptKeras`` in the same process,
once with ``ckpt_local_directory`` and once without, and reports:

* ``blocked_per_ckpt_s``: training time blocked per checkpoint (``save_epoch`` and
  waits for an earlier commit; the final flush at the end of training apart, as
  ``final_flush_s``), two tiers and one, against ``keras_save_s``, a plain
  ``model.save`` to the shared tier (``blocked_ratio``: goal <= 0.2);
* ``shared_bytes_ratio``: bytes written to the shared tier per epoch, two tiers over
  one (goal: about 1/``ckpt_drain_interval``; ``drained``: checkpoints that reached the
  shared tier).  A drain writes each byte of a checkpoint once; a single-tier commit may
  write more than the checkpoint's size (the model file's archive), so the ratio can be
  below 1/interval;
* ``signal_to_exit_s``: from a real SIGTERM to `Preempted` (exit 75), the preemption
  checkpoint on the shared tier, two tiers and one (medians of ``EXIT_REPEATS``, alternated);
  ``exit_vs_one_tier`` (goal <= 1: the median of the pairs' ratios, each pair run back to back) and
  ``exit_vs_floor``: two tiers' time over the floor, the checkpoint's bytes over the
  shared tier's write speed measured in the same run (``dd conv=fsync`` of as many
  bytes; goal <= 1.5);
* ``restart_local_s`` / ``memory_read_s``: a restart from the node-local tier against
  reading the same files' bytes from memory (``restart_ratio``), and
  ``restart_shared_s``, a restart from the shared tier (a new node).

Usage: ``python bench/tiers.py [PARAMS ...]`` (default 2M; ``BENCH_TIERS_LARGE=1`` adds 50M);
prints one JSON object.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.faultfs: the throttled shared tier
from _util import dd, dense_model, files_under

if TYPE_CHECKING:
    import keras
    import numpy as np

    from candle_restart.keras import CandleCkptKeras
    from tests.faultfs.control import FaultFS

    Data = tuple[np.ndarray, np.ndarray]
    Logs = dict[str, float] | None

SHARED_BPS = 100e6
PARAMS = 2_000_000
LARGE = 50_000_000
EXIT_GOAL = 1.5  # signal to exit, two tiers, over the floor (checkpoint bytes / shared write speed)
EPOCHS = 8
EXIT_REPEATS = 5  # signal-to-exit and the floor: medians of this many
INTERVAL = 4
GOAL = 0.2


def params(shared: Path, local: Path | None, **extra: object) -> dict[str, object]:
    p: dict[str, object] = {
        "epochs": EPOCHS,
        "ckpt_directory": str(shared),
        "ckpt_save_best": False,
        "ckpt_keep_limit": 2,
        **extra,
    }
    if local is not None:
        p.update(ckpt_local_directory=str(local), ckpt_drain_interval=INTERVAL)
    return p


def timed_callback(gparams: dict[str, object], blocked: list[float], final: list[float]) -> CandleCkptKeras:
    """A `CandleCkptKeras` that appends the time each `save_epoch` keeps the training thread to
    ``blocked``, and the time of the end of training (the final flush) to ``final``."""
    from candle_restart.keras import CandleCkptKeras

    class Timed(CandleCkptKeras):
        def save_epoch(self, epoch: int, position: dict[str, int] | None = None) -> Path:
            start = time.perf_counter()
            try:
                return super().save_epoch(epoch, position)  # includes any wait for the commit before
            finally:
                blocked.append(time.perf_counter() - start)

        def on_train_end(self, logs: Logs = None) -> None:
            start = time.perf_counter()
            super().on_train_end(logs)
            final.append(time.perf_counter() - start)

    return Timed(gparams, logger=None)


def train(model: keras.Model, data: Data, gparams: dict[str, object], fs: FaultFS) -> dict[str, float]:
    """Fit ``EPOCHS`` epochs checkpointing each; blocked time and bytes written to the shared tier."""
    before = fs.stats()["bytes_written"]
    blocked: list[float] = []
    final: list[float] = []
    ckpt = timed_callback(gparams, blocked, final)
    ckpt.set_model(model)
    start = time.perf_counter()
    model.fit(*data, epochs=EPOCHS, batch_size=64, verbose=0, callbacks=[ckpt])
    return {
        "blocked_per_ckpt_s": round(statistics.median(blocked), 4),
        "final_flush_s": round(final[0], 4),
        "fit_s": round(time.perf_counter() - start, 3),
        "shared_bytes_per_epoch": (fs.stats()["bytes_written"] - before) / EPOCHS,
        "drained": ckpt.drainer.drains if ckpt.drainer is not None else EPOCHS,
    }


def preempt(model: keras.Model, data: Data, gparams: dict[str, object]) -> float:
    """Seconds from a real SIGTERM (sent at a batch end of the 1st epoch) to `Preempted`.

    A fresh start (``ckpt_restart_mode=off``) whose writer lease is taken before training, as a
    restart takes it: a preemption finds the lease held (and, with two tiers, the tiers bound)."""
    import keras

    from candle_restart.keras import CandleCkptKeras
    from candle_restart.runtime.preempt import REQUEST, Preempted

    class Signal(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
            if batch == 2 and not REQUEST.requested:
                os.kill(os.getpid(), signal.SIGTERM)

    REQUEST.clear()
    ckpt = CandleCkptKeras({**gparams, "ckpt_restart_mode": "off"}, logger=None)
    ckpt.set_model(model)
    ckpt.hold_writer()  # as a restart does before training: the signal finds the lease held
    try:
        model.fit(*data, epochs=EPOCHS, batch_size=64, verbose=0, callbacks=[Signal(), ckpt])
    except Preempted:
        took = time.monotonic() - REQUEST.received
    else:
        raise RuntimeError("the training was not preempted")
    finally:
        REQUEST.clear()
        ckpt.release_writer()
    return took


def leave_local(model: keras.Model, data: Data, gparams: dict[str, object]) -> None:
    """Train one epoch of ``EPOCHS`` from scratch: its checkpoint stays on the node-local tier."""
    from candle_restart.keras import CandleCkptKeras

    ckpt = CandleCkptKeras({**gparams, "ckpt_restart_mode": "off"}, logger=None)
    model.fit(*data, epochs=1, batch_size=64, verbose=0, callbacks=[ckpt])
    ckpt.release_writer()


def restart_time(model: keras.Model, gparams: dict[str, object]) -> float:
    from candle_restart.keras import CandleCkptKeras

    ckpt = CandleCkptKeras(gparams, logger=None)
    start = time.perf_counter()
    found = ckpt.restart(model)
    took = time.perf_counter() - start
    ckpt.release_writer()
    if found is None:
        raise RuntimeError("nothing to restart from")
    return took


def memory_read(directory: Path) -> float:
    """Seconds to read every file of ``directory`` (already in memory: tmpfs or the page cache)."""
    start = time.perf_counter()
    for path in files_under(directory):
        path.read_bytes()
    return time.perf_counter() - start


def measure(n_params: int) -> dict[str, object]:
    import numpy as np

    from tests.faultfs.control import fuse_unavailable, mount_faultfs

    reason = fuse_unavailable()
    if reason:
        return {"skipped": reason}
    model = dense_model(n_params)
    width = model.input_shape[-1]
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(512, width)).astype("float32"), rng.normal(size=(512, width)).astype("float32"))
    local_parent = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryDirectory(dir=local_parent) as local,
        mount_faultfs(Path(tmp) / "backing", Path(tmp) / "shared") as fs,
    ):
        fs.throttle(read_bps=SHARED_BPS, write_bps=SHARED_BPS)
        shared = fs.path()
        start = time.perf_counter()
        model.save(shared / "plain.keras")
        keras_save = time.perf_counter() - start
        (shared / "plain.keras").unlink()
        one = train(model, data, params(shared / "one", None), fs)
        two = train(model, data, params(shared / "two", Path(local)), fs)
        exits: dict[str, list[float]] = {"one": [], "two": []}
        for _ in range(EXIT_REPEATS):  # alternated: both see the same moments of a noisy machine
            exits["one"].append(preempt(model, data, params(shared / "one", None)))
            exits["two"].append(preempt(model, data, params(shared / "two", Path(local))))
        exit_one, exit_two = statistics.median(exits["one"]), statistics.median(exits["two"])
        # The stops' checkpoints went straight to the shared tier: one fit epoch leaves a node-local one.
        leave_local(model, data, params(shared / "two", Path(local)))
        restart_local = restart_time(model, params(shared / "two", Path(local)))
        newest = max(Path(local).rglob("epochs/[0-9]*"), key=lambda p: p.name)
        read_s = memory_read(newest)
        ckpt_bytes = sum(p.stat().st_size for p in files_under(newest))
        # the shared tier's write speed, this run
        floor = statistics.median(dd(shared / "floor.bin", ckpt_bytes) for _ in range(EXIT_REPEATS))
        for tier in Path(local).iterdir():  # a new node: no node-local tier
            shutil.rmtree(tier)
        restart_shared = restart_time(model, params(shared / "two", Path(local)))
    blocked = two["blocked_per_ckpt_s"] / keras_save
    vs_one = statistics.median(two / one for one, two in zip(exits["one"], exits["two"], strict=True))
    vs_floor = exit_two / floor
    shared_bytes = two["shared_bytes_per_epoch"] / one["shared_bytes_per_epoch"]
    return {
        "params": model.count_params(),
        "shared_mb_per_s": SHARED_BPS / 1e6,
        "drain_interval": INTERVAL,
        "keras_save_s": round(keras_save, 4),
        "one_tier": one,
        "two_tiers": two,
        "blocked_ratio": round(blocked, 4),
        "blocked_goal": f"<= {GOAL}",
        "shared_bytes_ratio": round(shared_bytes, 4),
        "shared_bytes_goal": f"about {1 / INTERVAL:g}",
        # In run_all's summary: objects with a goal and whether it was met.
        "blocked": {"ratio": round(blocked, 4), "goal": f"<= {GOAL}", "met": blocked <= GOAL},
        "shared_bytes": {
            "ratio": round(shared_bytes, 4),
            "goal": f"<= {1 / INTERVAL:g} (one checkpoint in {INTERVAL})",
            "met": shared_bytes <= 1 / INTERVAL + 0.02,
        },
        "signal_to_exit_s": {
            "one_tier": round(exit_one, 4),
            "two_tiers": round(exit_two, 4),
            "each": {tier: [round(t, 4) for t in times] for tier, times in exits.items()},
            "floor": round(floor, 4),
            "checkpoint_mb": round(ckpt_bytes / 1e6, 1),
        },
        "exit_vs_one_tier": {"ratio": round(vs_one, 3), "goal": "<= 1", "met": vs_one <= 1.0},
        "exit_vs_floor": {
            "ratio": round(vs_floor, 3),
            "goal": f"<= {EXIT_GOAL} x checkpoint bytes / shared write speed",
            "met": vs_floor <= EXIT_GOAL,
        },
        "restart_local_s": round(restart_local, 4),
        "memory_read_s": round(read_s, 4),
        "restart_ratio": round(restart_local / read_s, 2),
        "restart_shared_s": round(restart_shared, 4),
    }


def main() -> None:
    sizes = [int(x) for x in sys.argv[1:]] or [PARAMS, *([LARGE] if os.environ.get("BENCH_TIERS_LARGE") else [])]
    results = {str(n): measure(n) for n in sizes}
    print(json.dumps({"bench": "tiers", "cores": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
