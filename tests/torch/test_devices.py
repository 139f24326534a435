"""Where a checkpoint's tensors lived: a GPU node's checkpoint restarts on a CPU node, and a model
whose tensors have no data (the ``meta`` device) is refused in one line before anything is written.

This machine has no GPU, so a GPU node's file is made the one way it can be here: CANDLE's
``torch.save`` of the same state with every storage tagged ``cuda:0`` (what ``torch.save`` records
for a CUDA tensor; the bytes are those of its host copy, as on a GPU node).  The real check, our
own format written from CUDA tensors through pinned buffers and loaded on another device, needs a
GPU node (tests/torch has none that runs here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")
from torch import nn  # noqa: E402
from torch.optim import Optimizer  # noqa: E402

from candle_restart import CandleCkptPyTorch  # noqa: E402
from candle_restart.runtime.preempt import PreemptionRequest  # noqa: E402

CANDLE_INFO = {
    "epoch": 2,
    "save_best_metric": "val_loss",
    "best_metric_last": 0.5,
    "model_file": "model.h5",
    "checksum": "__DISABLED__",
    "timestamp": "2024-01-01 00:00:00",
    "time_elapsed": "__FIRST__",
    "metadata": None,
}


def _model_and_optimizer() -> tuple[nn.Module, Optimizer]:
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    return model, opt


def test_a_checkpoint_candle_wrote_on_a_gpu_node_restarts_on_this_cpu_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this node has CUDA: a cuda:0 file would load there without map_location")
    torch.manual_seed(5)
    trained, trained_opt = _model_and_optimizer()
    trained(torch.randn(8, 4)).pow(2).mean().backward()
    trained_opt.step()
    checkpoint = tmp_path / "ckpts" / "epochs" / "002"
    checkpoint.mkdir(parents=True)
    state = {
        "epoch": 2,
        "model_state_dict": trained.state_dict(),
        "optimizer_state_dict": trained_opt.state_dict(),
        "loss": 0,
    }
    with monkeypatch.context() as patch:  # every storage recorded as a GPU node records it
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, checkpoint / "model.h5")
    with pytest.raises(RuntimeError, match="CUDA"):  # it is a GPU node's file: plain loading fails here
        torch.load(checkpoint / "model.h5", weights_only=True)
    (checkpoint / "ckpt-info.json").write_text(json.dumps(CANDLE_INFO))
    (tmp_path / "ckpts" / "last").symlink_to(checkpoint)

    model, opt = _model_and_optimizer()
    ckpt = CandleCkptPyTorch({"epochs": 4, "ckpt_directory": str(tmp_path / "ckpts")}, verbose=False)
    ckpt.set_model({"model": model, "optimizer": opt})
    J = ckpt.restart(model)
    assert J is not None and J["epoch"] == 2
    for a, b in zip(model.state_dict().values(), trained.state_dict().values(), strict=True):
        assert a.device.type == "cpu" and torch.equal(a, b)
    for live, saved in zip(opt.state.values(), trained_opt.state.values(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert live[key].device.type == "cpu" and torch.equal(live[key], saved[key])


# `preemption`: the refused checkpoint raises out of the loop's first ckpt_epoch, which armed the
# handlers; nothing ends this "training", so they stay armed as they would until the process ends.
@pytest.mark.parametrize("async_commit", [True, False])
def test_tensors_on_the_meta_device_are_refused_in_one_line_and_nothing_is_written(
    tmp_path: Path, preemption: PreemptionRequest, async_commit: bool
) -> None:
    model = nn.Linear(256, 256, device="meta")  # 256 KiB of weights: an asynchronous copy would be deferred
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    params = {"epochs": 2, "ckpt_directory": str(tmp_path / "ckpts"), "ckpt_async": async_commit}
    ckpt = CandleCkptPyTorch(params, verbose=False)
    ckpt.set_model({"model": model, "optimizer": opt})
    with pytest.raises(TypeError) as caught:
        ckpt.ckpt_epoch(0, 1.0)
    assert str(caught.value) == "checkpoint: model/weight: a tensor on the meta device has no data to save"
    assert not (tmp_path / "ckpts" / "last").exists()
    assert not list((tmp_path / "ckpts").glob("epochs/*")) and not list((tmp_path / "ckpts").glob("work-*"))
