"""Test helper: a checkpoint writer whose every checkpoint says who wrote it.

Usage: python -m tests.programs.lease_writer CKPT_DIR TAG [EPOCHS|-] [POINT|-] [LOCAL_DIR]

Writes checkpoints through the core (the writer lease included) until EPOCHS
(default: until killed).  Each ``model.bin`` holds ``TAG epoch N`` and each
``ckpt-info.json`` has ``metadata`` = TAG, so a checkpoint mixed from two
writers is visible.  Prints ``resumed N``, then ``committed N`` after each
commit; on a refused lease prints ``refused: ...`` and exits 3; when a commit
fails (a lost lease) prints ``lost: ...`` and exits 4.

POINT, a deterministic place to stop at (no timing involved), is one of:

* ``stop-before:K``: prints ``stopping K`` and stops itself (SIGSTOP) right
  before it takes the checkpoint of epoch K (its next step is the commit
  protocol's `begin`);
* ``stop-inside:K``: the same, half-way through writing epoch K's ``model.bin``
  into its work directory;
* ``hold-inside:K``: half-way through writing epoch K's ``model.bin``, prints
  ``holding K`` and waits for a line on stdin (the test releases it);
* ``stop-drain:K`` (with LOCAL_DIR): stops itself in its drain thread right before
  the first drain of epoch K or later to the shared tier begins;
* ``stop-direct:K`` (with LOCAL_DIR): asks itself to stop before epoch K's checkpoint
  (as a walltime halt does), so that checkpoint is committed straight to the shared
  tier, and stops itself half-way through writing its ``model.bin`` there; then waits
  for that commit (`wait_for_commit`) as a training does before its exit.

With LOCAL_DIR it writes two tiers: commits on the node-local tier below LOCAL_DIR,
each drained to CKPT_DIR (the shared tier) at once.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from candle_restart.errors import CommitError
from candle_restart.runtime.lease import LeaseBusy
from candle_restart.runtime.preempt import REQUEST
from tests.helpers import BytesCkpt, BytesModel


def _stop(epoch: int) -> None:
    print(f"stopping {epoch}", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)


class PointedCkpt(BytesCkpt):
    """`BytesCkpt` that stops or holds half-way through one checkpoint's model file."""

    point: tuple[str, int] = ("", 0)

    def write_model_backend(self, model: object, epoch: int) -> None:
        kind, at = self.point
        if epoch != at or kind not in ("stop-inside", "hold-inside", "stop-direct"):
            return super().write_model_backend(model, epoch)
        assert self.model_file is not None and isinstance(model, BytesModel)
        half = len(model.payload) // 2
        with open(self.model_file, "wb") as f:
            f.write(model.payload[:half])
            f.flush()
            if kind in ("stop-inside", "stop-direct"):
                _stop(at)
            else:
                print(f"holding {at}", flush=True)
                sys.stdin.readline()
            f.write(model.payload[half:])


def _stop_before_drain(ckpt: PointedCkpt, at: int) -> None:
    """Make the drainer's thread stop the process right before it drains epoch ``at``."""
    drainer = ckpt.drainer
    assert drainer is not None, "stop-drain needs LOCAL_DIR"
    drain = drainer._drain  # a test's hook on the drainer's one step: copy, verify, publish

    stopped: list[int] = []

    def stopping(job: Any) -> None:
        if job.epoch >= at and not stopped:
            stopped.append(job.epoch)
            _stop(job.epoch)
        drain(job)

    drainer._drain = stopping  # type: ignore[method-assign]


def main() -> int:
    directory, tag = sys.argv[1], sys.argv[2]
    args = [*sys.argv[3:], "-", "-", "-"]
    epochs = 10**6 if args[0] == "-" else int(args[0])
    kind, _, at = ("", "", "0") if args[1] == "-" else args[1].partition(":")
    params: dict[str, Any] = {
        "epochs": epochs,
        "ckpt_directory": directory,
        "ckpt_checksum": True,
        "ckpt_keep_limit": 3,
        "metadata": tag,
    }
    if args[2] != "-":
        params |= {"ckpt_local_directory": args[2], "ckpt_drain_interval": 1, "ckpt_save_best": False}
    ckpt = PointedCkpt(params, logger=None)
    ckpt.point = (kind, int(at))
    if kind == "stop-drain":
        _stop_before_drain(ckpt, int(at))
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
        if (kind, int(at)) == ("stop-before", epoch + 1):
            _stop(epoch + 1)
        if (kind, int(at)) == ("stop-direct", epoch + 1):
            assert ckpt.drainer is not None, "stop-direct needs LOCAL_DIR"
            REQUEST.halt("the test's stop")
        try:
            ckpt.ckpt_epoch(epoch, "-", 1.0)
            if REQUEST.requested:
                ckpt.wait_for_commit()
        except CommitError as exc:
            print(f"lost: {exc}", flush=True)
            return 4
        print(f"committed {epoch + 1}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
