"""Test helper: a checkpoint writer whose every checkpoint says who wrote it.

Usage: python -m tests.fault.lease_writer CKPT_DIR TAG [EPOCHS]

Writes checkpoints through the core (the writer lease included) until EPOCHS
(default: until killed).  Each ``model.bin`` holds ``TAG epoch N`` and each
``ckpt-info.json`` has ``metadata`` = TAG, so a checkpoint mixed from two
writers is visible.  Prints ``resumed N``, then ``committed N`` after each
commit; on a refused lease prints ``refused: ...`` and exits 3; when a commit
fails (a lost lease) prints ``lost: ...`` and exits 4.
"""

from __future__ import annotations

import sys

from candle_restart.ckpt.lease import LeaseBusy
from candle_restart.errors import CommitError
from tests.helpers import BytesCkpt, BytesModel


def main() -> int:
    directory, tag = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 10**6
    params = {
        "epochs": epochs,
        "ckpt_directory": directory,
        "ckpt_checksum": True,
        "ckpt_keep_limit": 3,
        "metadata": tag,
    }
    ckpt = BytesCkpt(params, logger=None)
    model = BytesModel()
    try:
        J = ckpt.restart(model)
    except LeaseBusy as exc:
        print(f"refused: {exc}", flush=True)
        return 3
    start = J["epoch"] if J else 0
    print(f"resumed {start}", flush=True)
    for epoch in range(start, epochs):
        model.payload = f"{tag} epoch {epoch + 1}".encode()
        try:
            ckpt.ckpt_epoch(epoch, "-", 1.0)
        except CommitError as exc:
            print(f"lost: {exc}", flush=True)
            return 4
        print(f"committed {epoch + 1}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
