"""Writes checkpoints in a loop through the core until killed; prints "committed N" after each.

Used by test_crash.py: run, kill -9 at a random instant, check, run again (it resumes).
Usage: python -m tests.programs.crash_writer CKPT_DIR SEED
"""

from __future__ import annotations

import random
import sys

from tests.helpers import BytesCkpt, BytesModel


def main() -> None:
    directory, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    params = {"epochs": 10**6, "ckpt_directory": directory, "ckpt_checksum": True, "ckpt_keep_limit": 2}
    ckpt = BytesCkpt(params, logger=None)
    model = BytesModel()
    J = ckpt.restart(model)
    start = J["epoch"] if J else 0
    print(f"resumed {start}", flush=True)
    for epoch in range(start, start + 10**6):
        model.payload = rng.randbytes(rng.randint(1, 400_000))
        ckpt.ckpt_epoch(epoch, "-", rng.random())
        print(f"committed {epoch + 1}", flush=True)


if __name__ == "__main__":
    main()
