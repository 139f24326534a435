"""A CANDLE benchmark's PyTorch loop in candle_lib's own calling pattern, run for a list of steps.

    python candle_baseline.py STEPS_JSON

The calls are candle_lib's documented example's (``CandleCkptPyTorch(gParams)``,
``set_model({"model": model, "optimizer": optimizer})``, ``J = ckpt.restart(model)``,
``ckpt.ckpt_epoch(epoch, train_loss)`` per epoch); the one line that changes is the import.
Unlike that example, the loop starts at ``J["epoch"]`` (it looped from 0 regardless).
STEPS_JSON is a list of ``{"cwd": DIR, "argv": [...], "rm": PATH or null}``; each step prints
``=== step N ===`` first and runs in this one process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

import torch
from torch import nn

import candle_restart as candle  # candle_lib: import candle
from candle_restart.ckpt_utils import ckpt_parser


def parameters(argv: list[str]) -> dict[str, Any]:
    """CANDLE's finalize_parameters, reduced: the benchmark's defaults, the command line, the ckpt_* keys."""
    parser = ckpt_parser(argparse.ArgumentParser())
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("--output_dir", default="out")
    params = vars(parser.parse_args(argv))
    params["ckpt_directory"] = os.path.join(params["output_dir"], "ckpts")
    return params


def train(model: nn.Module, loader: Any, optimizer: Any, criterion: Any) -> float:
    model.train()
    running_loss = 0.0
    for data, target in loader:
        optimizer.zero_grad()
        loss = criterion(model(data), target)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    return running_loss / len(loader)


def run(gParams: dict[str, Any]) -> None:
    torch.manual_seed(42)
    x = torch.randn(128, 5)
    y = x.sum(dim=1, keepdim=True)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=gParams["batch_size"], shuffle=True
    )
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=gParams["learning_rate"])

    ckpt = candle.CandleCkptPyTorch(gParams)
    ckpt.set_model({"model": model, "optimizer": optimizer})
    J = ckpt.restart(model)
    initial_epoch = 0
    if J is not None:
        initial_epoch = J["epoch"]
        print(f"restarting from ckpt: initial_epoch: {initial_epoch}")

    for epoch in range(initial_epoch, gParams["epochs"]):
        train_loss = train(model, loader, optimizer, criterion)
        ckpt.ckpt_epoch(epoch, train_loss)


def main() -> int:
    for n, step in enumerate(json.loads(sys.argv[1]), 1):
        os.chdir(step["cwd"])
        if step.get("rm"):
            shutil.rmtree(step["rm"])
        print(f"=== step {n} ===", flush=True)
        run(parameters(step["argv"]))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
