"""A toy training task for coordinator tests: real checkpoints through the core, no TensorFlow.

Params: ``epochs``; ``preempt_at`` (on a fresh start, SIGUSR1 to itself after that epoch's
commit, then stop with exit 75); ``fail_at`` (raise after that epoch on every attempt);
``hold_fifo`` (after epoch 1, block reading this FIFO until the test writes a line);
``await_signal`` (with ``hold_fifo``: after the gate, wait up to this many seconds for the stop
request the test sends, so it lands inside the training however slowly it travels; a request that
never comes lets the training run on to its end, which the test sees);
``epoch_seconds`` (each epoch takes this long, so a scheduler can interrupt it);
``done_fifo`` (on completion, write "done" to this FIFO if the test is reading it);
``needs`` (a path: a training error while it does not exist, as a missing input file is);
``requires`` (a path: bad input while it does not exist, as a wrong parameter is);
``die_at_start`` (SIGKILL itself before the first epoch, on every attempt: a crash before any
checkpoint); ``stop_at_start`` (stop as on a signal, exit 75, before the first epoch, on every
attempt: preempted before any checkpoint); ``hog_mb`` (touch this many MB of memory before training, as a model too big for
its node does); ``log`` (write ``ckpts/ckpt.log``).
Under a walltime the core halts it before the end (`candle_restart.ckpt.pacing`).
`returning` runs the same and returns numpy values and an object JSON cannot hold.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from candle_restart.errors import ParamError
from candle_restart.runtime.preempt import REQUEST, Preempted
from tests.helpers import BytesCkpt, BytesModel


def run(params: dict[str, Any]) -> None:
    if params.get("requires") and not os.path.exists(params["requires"]):
        raise ParamError("gParameters", "requires", f"{params['requires']} does not exist")
    if params.get("needs") and not os.path.exists(params["needs"]):
        raise FileNotFoundError(f"{params['needs']} does not exist")
    if params.get("hog_mb"):
        hog = [bytearray(16 << 20) for _ in range(int(params["hog_mb"]) // 16)]  # zeroed: touched
        del hog
    if params.get("die_at_start"):
        os.kill(os.getpid(), signal.SIGKILL)
    if params.get("stop_at_start"):
        raise Preempted("stopped before the first epoch")
    ckpt = BytesCkpt(params) if params.get("log") else BytesCkpt(params, logger=None)
    model = BytesModel()
    J = ckpt.restart(model)
    for epoch in range(J["epoch"] if J else 0, int(params["epochs"])):
        if params.get("epoch_seconds"):
            time.sleep(float(params["epoch_seconds"]))
        model.payload = f"epoch {epoch + 1}".encode()
        ckpt.ckpt_epoch(epoch, "-", 1.0 / (epoch + 1))
        if params.get("preempt_at") == epoch + 1 and J is None:
            os.kill(os.getpid(), signal.SIGUSR1)
        if params.get("fail_at") and epoch + 1 >= params["fail_at"]:
            raise RuntimeError(f"boom at epoch {epoch + 1}")
        if params.get("hold_fifo") and epoch == 0:
            with open(params["hold_fifo"]) as gate:
                gate.readline()
            deadline = time.monotonic() + float(params.get("await_signal", 0))
            while not REQUEST.requested and time.monotonic() < deadline:
                time.sleep(0.01)  # polls the request flag the signal handler sets
        if REQUEST.requested:
            raise Preempted(f"{REQUEST.name} received; stopped after epoch {epoch + 1}")
    if params.get("done_fifo"):
        try:
            fd = os.open(params["done_fifo"], os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # nobody is waiting
            return
        os.write(fd, f"done {os.environ.get('SLURM_JOB_ID', '')}\n".encode())
        os.close(fd)


def exit_quietly(params: dict[str, Any]) -> None:
    """An entry that ends with a bare ``sys.exit()``, as some benchmark scripts do."""
    import sys

    sys.exit()


def returning(params: dict[str, Any]) -> dict[str, Any]:
    """`run`, then a result as CANDLE benchmarks return them: numpy numbers, and a model object."""
    import numpy as np

    run(params)
    epochs = int(params["epochs"])
    return {
        "val_loss": np.float32(1.0 / epochs),
        "curve": np.array([1.0 / (e + 1) for e in range(epochs)]),
        "n": np.int64(epochs),
        "model": BytesModel(),
    }
