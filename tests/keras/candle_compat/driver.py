"""Run CANDLE benchmark scripts with candle_restart in place of candle_lib's checkpoint module.

    python driver.py STEPS_JSON

STEPS_JSON is a list of ``{"generation": "develop"|"master", "cwd": DIR,
"argv": [...], "rm": PATH or null}``: each step removes ``rm`` (relative to
``cwd``) if given, then runs the generation's baseline script with ``runpy``
as ``__main__`` in ``cwd`` with ``argv``, all in this one process, printing
``=== step N ===`` before each.  Before the first step the shim's checkpoint
names, of both generations, are assigned candle_restart's objects of the
same names: the only thing that changes.

``CANDLE_COMPAT_KILL_AT_EPOCH=K`` (a test hook, not CANDLE's) makes the
benchmark's ``CandleRemoteMonitor`` SIGKILL the process when epoch K+1
begins, i.e. after epoch K's ``on_epoch_end`` of every callback.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "shim"), str(HERE / "bmk")]

import candle  # noqa: E402  (the shim)
import candle.ckpt_utils  # noqa: E402

import candle_restart  # noqa: E402
import candle_restart.ckpt_utils  # noqa: E402

# The checkpoint names of candle_lib's candle/__init__.py (develop, then master) and of candle.ckpt_utils.
TOP_LEVEL = [
    "CandleCkptKeras",
    "CandleCkpt",
    "ModelType",
    "MultiGPUCheckpoint",
    "CandleCheckpointCallback",
    "restart",
]
CKPT_UTILS = ["CandleCkpt", "ModelType", "ckpt_parser", "ckpt_defs"]


def swap() -> None:
    for name in TOP_LEVEL:
        setattr(candle, name, getattr(candle_restart, name))
    for name in CKPT_UTILS:
        setattr(candle.ckpt_utils, name, getattr(candle_restart.ckpt_utils, name))


def install_kill_hook(epoch: int) -> None:
    base: Any = candle.CandleRemoteMonitor

    class KillingMonitor(base):
        def on_epoch_begin(self, index: int, logs: Any = None) -> None:
            if index == epoch:
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)

    candle.CandleRemoteMonitor = KillingMonitor


def main() -> int:
    steps = json.loads(sys.argv[1])
    swap()
    if os.environ.get("CANDLE_COMPAT_KILL_AT_EPOCH"):
        install_kill_hook(int(os.environ["CANDLE_COMPAT_KILL_AT_EPOCH"]))
    for n, step in enumerate(steps, 1):
        os.chdir(step["cwd"])
        if step.get("rm"):
            shutil.rmtree(step["rm"])
        print(f"=== step {n} ===", flush=True)
        script = str(HERE / "bmk" / f"compat_baseline_{step['generation']}.py")
        sys.argv = [script, *step["argv"]]
        runpy.run_path(script, run_name="__main__")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
