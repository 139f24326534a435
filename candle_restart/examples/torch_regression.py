"""A tiny CANDLE-style PyTorch benchmark: a Dropout MLP, AdamW, OneCycleLR per batch, a shuffled DataLoader.

It checkpoints as candle_lib's PyTorch example does, and exactly::

    ckpt = CandleCkptPyTorch(gParameters)
    ckpt.set_model({"model": model, "optimizer": opt, "scheduler": sched, "dataloader": loader})
    J = ckpt.restart(model)
    for epoch in range(J["epoch"] if J else 0, epochs):
        for batch, (x, y) in ckpt.enumerate(loader): ...; ckpt.batch_end(batch)
        ckpt.ckpt_epoch(epoch, val_loss)

Run it as ``python -m candle_restart.examples.torch_regression --epochs 3 --output_dir out``;
``run(gParameters)`` is the entry point a task runner calls.  The data and the initial weights
are fixed by ``rng_seed``; Dropout and the shuffle draw from torch's global RNG, which the
checkpoint carries, so an interrupted and resumed run ends bit-for-bit where an uninterrupted
one does, also after a signal inside an epoch (exit 75, resumed at the next batch).
``signal_at=E:B`` (a demo and test hook) sends the process a real SIGUSR1 inside batch B of
epoch E (1-based); ``progress_fifo`` (a test hook) trains in lockstep with a test, as the Keras
example's does (`_Progress`).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Mapping

Params = Mapping[str, object]  # gParameters
HOLD_SECONDS = 300  # how long the progress_fifo hook waits for a signal it was told is coming

DEFAULTS: dict[str, object] = {
    "epochs": 4,
    "batch_size": 32,
    "learning_rate": 0.01,
    "dropout": 0.2,
    "hidden": 32,
    "samples": 512,
    "rng_seed": 7,
    "ckpt_save_best_metric": "val_loss",
}


def _number(params: Params, key: str, kind: type[int] | type[float]) -> int | float:
    """``params[key]`` as ``kind`` (a command line gives strings); ValueError naming the key."""
    value = params[key]
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return kind(value)
    raise ValueError(f"gParameters: {key}: must be a number, got {value!r}")


class _Progress:
    """Test hook: write "epoch batch" lines to the FIFO at ``path`` after every batch.

    The same contract as the Keras example's (`candle_restart.examples.regression`): reports
    only while someone has the FIFO open for reading (checked once, at start); if the FIFO
    ``<path>.ack`` exists too, each batch end waits for one byte from it until its writer closes
    it, so a signal lands at the batch the test chose.  The byte ``!`` says a signal is on its way
    by a path the test cannot follow (a scheduler's): the batch end then also waits until it has
    come (a stop requested; RuntimeError after `HOLD_SECONDS`), so it lands at this batch.
    """

    def __init__(self, path: str) -> None:
        self.fd: int | None = None
        self.ack: int | None = None
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.set_blocking(self.fd, True)
        except OSError:  # ENXIO or ENOENT: nobody is watching this run
            self.fd = None
        if self.fd is not None and os.path.exists(path + ".ack"):
            self.ack = os.open(path + ".ack", os.O_RDONLY)  # the test holds it open for writing

    def batch_end(self, epoch: int, batch: int) -> None:
        if self.fd is not None:
            try:
                os.write(self.fd, f"{epoch} {batch}\n".encode())
            except BrokenPipeError:
                self.fd = None
        if self.ack is None:
            return
        byte = os.read(self.ack, 1)
        if not byte:  # b"": the test let go
            os.close(self.ack)
            self.ack = None
        elif byte == b"!":
            from candle_restart.runtime.preempt import REQUEST

            deadline = time.monotonic() + HOLD_SECONDS
            while not REQUEST.requested:  # set by the signal handler, in this thread, between bytecodes
                if time.monotonic() > deadline:
                    raise RuntimeError(f"progress_fifo: no signal came within {HOLD_SECONDS} s")
                time.sleep(0.05)


def run(gParameters: Params) -> dict[str, float]:
    """Train per ``gParameters`` (CANDLE's ``run``); returns the final epoch's losses."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from candle_restart.ckpt import str2bool
    from candle_restart.torch import CandleCkptPyTorch

    params = {**DEFAULTS, **gParameters}
    epochs, batch_size = int(_number(params, "epochs", int)), int(_number(params, "batch_size", int))
    samples, hidden = int(_number(params, "samples", int)), int(_number(params, "hidden", int))
    torch.manual_seed(int(_number(params, "rng_seed", int)))
    x = torch.randn(samples, 16)
    y = torch.tanh(x @ torch.randn(16, 1)) + 0.1 * torch.randn(samples, 1)
    cut = samples * 3 // 4
    train = torch.utils.data.TensorDataset(x[:cut], y[:cut])
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True)
    model = nn.Sequential(
        nn.Linear(16, hidden),
        nn.ReLU(),
        nn.Dropout(float(_number(params, "dropout", float))),
        nn.Linear(hidden, 1),
    )
    lr = float(_number(params, "learning_rate", float))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * len(loader))

    ckpt = CandleCkptPyTorch(params, verbose=str2bool(params.get("verbose", False)))
    ckpt.set_model({"model": model, "optimizer": opt, "scheduler": sched, "dataloader": loader})
    J = ckpt.restart(model)
    initial_epoch = J["epoch"] if J else 0
    signal_at = (
        tuple(int(n) for n in str(params["signal_at"]).split(":")) if params.get("signal_at") else None
    )
    progress = _Progress(str(params["progress_fifo"])) if params.get("progress_fifo") else None
    final: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        model.train()
        for batch, (xb, yb) in ckpt.enumerate(loader):
            opt.zero_grad()
            loss = F.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            if signal_at == (epoch + 1, batch + 1):
                os.kill(os.getpid(), signal.SIGUSR1)
            if progress is not None:
                progress.batch_end(epoch, batch)
            ckpt.batch_end(batch)
        model.eval()
        with torch.no_grad():
            final = {"loss": F.mse_loss(model(x[:cut]), y[:cut]).item()}
            final["val_loss"] = F.mse_loss(model(x[cut:]), y[cut:]).item()
        ckpt.epoch_logs = final  # every metric of the epoch, for ckpts/events.jsonl and the report
        ckpt.ckpt_epoch(epoch, final["val_loss"])
    print(f"trained epochs {initial_epoch + 1}..{epochs}; final: {final}", flush=True)
    if params.get("weights_out"):
        torch.save(model.state_dict(), str(params["weights_out"]))
    return final


def parser() -> argparse.ArgumentParser:
    from candle_restart.ckpt import ckpt_parser

    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for key, value in DEFAULTS.items():
        if not key.startswith("ckpt_"):
            p.add_argument(f"--{key}", type=type(value), default=value)
    p.add_argument("--output_dir", default=".")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--weights_out", default=None, help="write the final model's state_dict here (torch.save)")
    p.add_argument("--progress_fifo", default=None, help="test hook: report batches to this FIFO")
    p.add_argument("--signal_at", default=None, help="EPOCH:BATCH: send this process SIGUSR1 there (demo)")
    return ckpt_parser(p)


def main(argv: list[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    run({k: v for k, v in args.items() if v is not None})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
