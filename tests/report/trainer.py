"""A training task for report tests: real checkpoints and a real ``ckpt.log`` through the core, no TensorFlow.

Unlike ``tests.coordinator.toy`` (which runs without a log), the callback here logs as CANDLE
does, so the report reads its epochs back from ``ckpts/ckpt.log``.

Params: ``epochs``; ``curve`` (the metric at each epoch end, a list; default 1/(epoch+1));
``preempt_at`` (a list of epochs: attempt k stops with exit 75 after epoch ``preempt_at[k-1]``,
by sending itself SIGUSR1 as a scheduler would); ``fail_at`` (raise after that
epoch on every attempt, with ``fail_message``); ``stop_inside`` ([epoch, batch]: the first attempt
commits a mid-epoch checkpoint inside that epoch and stops with exit 75, as a signal in the middle of
an epoch does); the ``ckpt_*`` gParameters as usual.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from candle_restart.runtime.preempt import REQUEST, Preempted
from candle_restart.task import TaskDir
from tests.helpers import BytesCkpt, BytesModel


def run(params: dict[str, Any]) -> None:
    ckpt = BytesCkpt(params)  # the default logger: ckpts/ckpt.log
    model = BytesModel()
    J = ckpt.restart(model)
    start = J["epoch"] if J else 0
    curve = params.get("curve") or [1.0 / (e + 1) for e in range(1, int(params["epochs"]) + 1)]
    attempt = TaskDir(Path(params["ckpt_directory"]).parent).attempts()  # the runner journaled its start
    stops = params.get("preempt_at", [])[attempt - 1 : attempt]
    inside = params.get("stop_inside")
    for epoch in range(start, int(params["epochs"])):
        if inside and attempt == 1 and epoch + 1 == inside[0]:
            ckpt.save_midepoch(epoch, inside[1])
            raise Preempted(f"stopped inside epoch {inside[0]} after batch {inside[1]}")
        model.payload = f"epoch {epoch + 1}".encode()
        ckpt.ckpt_epoch(epoch, "-", curve[epoch])
        if stops and epoch + 1 == stops[0]:
            os.kill(os.getpid(), signal.SIGUSR1)
        if params.get("fail_at") and epoch + 1 >= params["fail_at"]:
            raise RuntimeError(params.get("fail_message") or f"boom at epoch {epoch + 1}")
        if REQUEST.requested:
            raise Preempted(f"{REQUEST.name} received; stopped after epoch {epoch + 1}")
    ckpt.report_final()
