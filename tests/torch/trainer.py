"""A plain PyTorch training loop checkpointed by `CandleCkptPyTorch`, for the tests' processes.

    python trainer.py --epochs N --ckpt_directory DIR --out FINAL.pt [--ckpt_* ...]
                      [--signal_at EPOCH:BATCH] [--progress]

Everything an exact resume has to carry: unseeded ``Dropout`` (torch's global RNG), AdamW,
OneCycleLR stepped every batch (its length fixed by ``SCHEDULE_EPOCHS``, whatever ``--epochs``
says), a shuffled ``DataLoader`` without a generator of its own, and an epoch-loss meter.  Each
epoch's loss is printed as a JSON line; the final model, optimizer, scheduler and torch RNG
state are written to ``--out`` (``torch.save``).  ``--signal_at E:B`` sends this process a real
SIGUSR1 inside batch B of epoch E (1-based; a test hook), ``--progress`` prints every batch.
"""

from __future__ import annotations

import argparse
import json
import os
import signal

import torch
import torch.nn.functional as F
from torch import nn

from candle_restart import CandleCkptPyTorch
from candle_restart.ckpt_utils import ckpt_parser

SCHEDULE_EPOCHS = 4


class Meter:
    """The running sum of an epoch's losses: state the loop keeps, checkpointed like the rest."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, value: float) -> None:
        self.total, self.count = self.total + value, self.count + 1

    def state_dict(self) -> dict[str, float | int]:
        return {"total": self.total, "count": self.count}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.total, self.count = float(state["total"]), int(state["count"])


def main() -> None:
    parser = ckpt_parser(argparse.ArgumentParser())
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--signal_at", default="")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    signal_at = tuple(int(n) for n in args.signal_at.split(":")) if args.signal_at else None
    gParams = {k: v for k, v in vars(args).items() if k not in ("out", "signal_at", "progress")}

    torch.manual_seed(0)  # data and initial weights: the same in every process
    x = torch.randn(96, 6)
    y = torch.tanh(x @ torch.randn(6, 1))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True)
    # 64x256 float32 is 64 KiB: large enough that its copy is deferred to the optimizer's next step.
    model = nn.Sequential(
        nn.Linear(6, 64), nn.ReLU(), nn.Dropout(0.25), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 1)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=SCHEDULE_EPOCHS * len(loader))
    meter = Meter()

    ckpt = CandleCkptPyTorch(gParams, verbose=False)
    ckpt.set_model(
        {"model": model, "optimizer": opt, "scheduler": sched, "dataloader": loader, "meter": meter}
    )
    J = ckpt.restart(model)
    for epoch in range(0 if J is None else J["epoch"], args.epochs):
        model.train()
        for batch, (xb, yb) in ckpt.enumerate(loader):
            opt.zero_grad()
            loss = F.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            meter.add(loss.item())
            if args.progress:
                print(json.dumps({"epoch": epoch + 1, "batch": batch + 1}), flush=True)
            if signal_at == (epoch + 1, batch + 1):
                os.kill(os.getpid(), signal.SIGUSR1)
            ckpt.batch_end(batch)
        epoch_loss = meter.total / meter.count
        meter.total, meter.count = 0.0, 0
        print(json.dumps({"epoch": epoch + 1, "loss": epoch_loss}), flush=True)
        ckpt.ckpt_epoch(epoch, epoch_loss)
    final = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    torch.save({**final, "rng": torch.get_rng_state()}, args.out)


if __name__ == "__main__":
    main()
