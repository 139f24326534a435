"""An asynchronous checkpoint's trained tensors are copied while the next batch runs, and the
optimizer's next step waits for that copy: the checkpoint holds the values of its instant."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")
from torch import nn  # noqa: E402

from candle_restart.ckpt import commit  # noqa: E402
from candle_restart.torch import CandleCkptPyTorch  # noqa: E402
from candle_restart.torch.snapshot import DEFER_FROM  # noqa: E402
from candle_restart.torch.tensorio import read_tensors  # noqa: E402


def test_the_next_optimizer_step_waits_for_the_snapshot_of_the_trained_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = nn.Linear(256, 256)
    assert model.weight.nbytes >= DEFER_FROM  # deferred, not copied when the checkpoint is taken
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    ckpt = CandleCkptPyTorch({"epochs": 3, "ckpt_directory": str(tmp_path)}, verbose=False)
    ckpt.set_model({"model": model, "optimizer": opt})

    def step() -> None:
        opt.zero_grad()
        model(torch.randn(4, 256)).pow(2).mean().backward()
        opt.step()

    step()
    stepped = threading.Event()  # the commit thread starts writing only after the next step
    begin = commit.begin

    def held_begin(*args: object, **kwargs: object) -> Path:
        assert stepped.wait(60)
        return begin(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(commit, "begin", held_begin)
    ckpt.on_train_begin()
    ckpt.save_epoch(1)  # returns before the commit thread has copied anything
    weight, exp_avg = model.weight.detach().clone(), opt.state[model.weight]["exp_avg"].clone()
    step()  # changes both in place: its pre-hook copies them first
    stepped.set()
    ckpt.on_train_end()
    assert not torch.equal(model.weight, weight)
    saved = read_tensors(tmp_path / "last" / "model.h5")
    assert torch.equal(saved["model/weight"], weight)
    assert torch.equal(saved["optimizer/state/0/exp_avg"], exp_avg)
