"""A two-tier checkpoint writer in a process of its own, for test_tier_processes.py (and bench/tiers.py).

Usage: python -m tests.programs.tier_writer SHARED LOCAL SEED MODE [MEGABYTES]

* ``crash``: resumes, then commits big random checkpoints forever (every one drained);
  prints "resumed N" and "committed N" after each; the test kills it with SIGKILL.
* ``preempt``: like a training with the preemption signals armed and a drain interval
  too long to drain anything on its own; once SIGTERM came it waits for the commit and
  the drain (``wait_for_commit``, as the Keras callback does before exit 75), prints
  "preempted N" and ends with ``os._exit(75)``: at once, without the thread joins of a
  normal exit, as a process the scheduler kills right after its "resume me" would.
* ``direct``: resumes, commits one checkpoint and waits for it to reach the shared tier
  (``wait_for_commit``), so nothing is being written or drained; then raises SIGTERM itself,
  prints "stopping N" and takes the stop's checkpoint N, which is committed straight to the
  shared tier; ends as ``preempt`` does.  The test kills it with SIGKILL inside that write:
  every shared work directory it wrote after "stopping" is the stop's.
"""

from __future__ import annotations

import os
import random
import signal
import sys

from candle_restart.runtime.preempt import EXIT_RESUME, REQUEST, arm
from tests.helpers import BytesCkpt, BytesModel


def main() -> None:
    shared, local, seed, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    megabytes = float(sys.argv[5]) if len(sys.argv) > 5 else 16.0
    rng = random.Random(seed)
    params = {
        "epochs": 10**6,
        "ckpt_directory": shared,
        "ckpt_local_directory": local,
        "ckpt_checksum": True,
        "ckpt_save_best": False,
        "ckpt_keep_limit": 3,
        "ckpt_drain_interval": 1 if mode == "crash" else 1000,
    }
    ckpt = BytesCkpt(params, logger="DEFAULT" if mode == "preempt" else None, verbose=False)
    model = BytesModel()
    if mode in ("preempt", "direct"):
        arm([signal.SIGTERM])
    J = ckpt.restart(model)
    start = J["epoch"] if J else 0
    print(f"resumed {start}", flush=True)
    size = int(megabytes * 1024 * 1024)
    for epoch in range(start, start + 10**6):
        model.payload = rng.randbytes(rng.randint(size // 2, size))
        if mode == "direct" and epoch > start:
            signal.raise_signal(signal.SIGTERM)  # its handler has run when this returns
            assert REQUEST.requested
            print(f"stopping {epoch + 1}", flush=True)
        ckpt.ckpt_epoch(epoch, "-", None)
        if mode == "direct" and epoch == start:
            ckpt.wait_for_commit()  # on the shared tier: from here on only the stop's commit writes there
        print(f"committed {epoch + 1}", flush=True)
        if REQUEST.requested:
            ckpt.wait_for_commit()
            print(f"preempted {epoch + 1}", flush=True)
            os._exit(EXIT_RESUME)


if __name__ == "__main__":
    main()
