"""A training for the hang watchdog's tests: real commits through the core, batches that beat.

The checkpoint object is `tests.helpers.BytesCkpt` (the core's smallest real backend: real
files, real commits, no TensorFlow); its pacer beats at each batch end and around each commit,
as the Keras and PyTorch callbacks' do.  Params: ``epochs``; ``batches`` per epoch;
``step_seconds`` (each batch sleeps this long); ``hang`` (on attempt 1 only): ``batch:E:B``
blocks forever inside batch B of epoch E, ``commit:E`` blocks forever inside the commit of
epoch E's checkpoint.  A stop request (a signal, the walltime) is served at the next epoch
end: `Preempted`, exit 75.  Run as a ``command`` through `main` (``--key=value`` arguments).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from candle_restart.runtime.envvars import ATTEMPT_ENV
from candle_restart.runtime.preempt import REQUEST, Preempted, arm
from tests.helpers import BytesCkpt, BytesModel


class _MaybeHanging(BytesCkpt):
    hang_in_commit = 0

    def write_model_backend(self, model: Any, epoch: int) -> None:
        if epoch == self.hang_in_commit:
            threading.Event().wait()  # blocked forever inside the commit (signals only set a flag)
        super().write_model_backend(model, epoch)


def run(params: dict[str, Any]) -> None:
    hang = str(params.get("hang") or "") if os.environ.get(ATTEMPT_ENV) == "1" else ""
    ckpt = _MaybeHanging(params, logger=None)
    if hang.startswith("commit:"):
        ckpt.hang_in_commit = int(hang.split(":")[1])
    model = BytesModel()
    restarted = ckpt.restart(model)
    arm(signal.Signals[f"SIG{name}"] for name in ckpt.settings.signals)  # as the callbacks do
    ckpt.in_training = True  # as the callbacks' on_train_begin: commits are timed by the watchdog
    ckpt.pacer.start()
    for epoch in range(restarted["epoch"] if restarted else 0, int(params["epochs"])):
        for batch in range(int(params.get("batches", 1))):
            time.sleep(float(params.get("step_seconds", 0.0)))
            if hang == f"batch:{epoch + 1}:{batch + 1}":
                threading.Event().wait()  # blocked forever inside a batch
            ckpt.pacer.batch_end(can_save=False)
        model.payload = f"epoch {epoch + 1}".encode()
        ckpt.ckpt_epoch(epoch, "-", 1.0 / (epoch + 1))
        if REQUEST.requested and epoch + 1 < int(params["epochs"]):
            raise Preempted(f"{REQUEST.name} received; stopped after epoch {epoch + 1}")
    ckpt.pacer.stop()
    ckpt.in_training = False


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main() -> None:
    """The ``command`` form: ``--key=value`` arguments as the runner passes them."""
    params = dict(arg[2:].partition("=")[::2] for arg in sys.argv[1:] if arg.startswith("--"))
    run({key: _value(value) for key, value in params.items()})


ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.programs.hang_toy import main; main()"]
