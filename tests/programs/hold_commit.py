"""Entry for a test: the example benchmark, but the background commit of epoch 2 stops half-way.

It writes the checkpoint's first file (``train_state.npz``), prints ``HOLDING``
and blocks the commit thread for good, so the test can kill -9 the process
while that commit is in flight.  Run as ``python -m tests.programs.hold_commit ARGS``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from candle_restart.ckpt.layout import TRAIN_STATE_FILE
from candle_restart.ckpt.sink import CheckpointFiles
from candle_restart.examples import regression
from candle_restart.keras import CandleCkptKeras
from candle_restart.keras.npz import write_npz
from candle_restart.keras.snapshot import KerasSnapshot
from candle_restart.records.ckptinfo import FileEntry


class HoldSecondCommit(CandleCkptKeras):
    calls = 0

    def write_snapshot(self, snapshot: Any, dir_work: Path) -> dict[str, FileEntry]:
        HoldSecondCommit.calls += 1
        model = getattr(snapshot, "inner", snapshot)  # under the other callbacks' state (WithCallbacks)
        if HoldSecondCommit.calls == 2 and isinstance(model, KerasSnapshot):
            files = CheckpointFiles(Path(dir_work), self.checksum_enabled)
            with files.create(TRAIN_STATE_FILE) as sink:
                write_npz(sink, model.state)
            print("HOLDING", flush=True)
            threading.Event().wait()  # never set: the test kills the process now
        return super().write_snapshot(snapshot, dir_work)


def main(argv: list[str]) -> int:
    args = vars(regression.parser().parse_args(argv))
    regression.run({k: v for k, v in args.items() if v is not None}, ckpt_class=HoldSecondCommit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
