"""The engine's promises hold for `CandleCkptPyTorch` as for the Keras callback: fallback past a
checkpoint that fails verification, two tiers, the walltime halt from a plain loop."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")
from torch import nn  # noqa: E402

from candle_restart.ckpt.restore import verify_checkpoint  # noqa: E402
from candle_restart.records.ckptinfo import read_ckpt_info  # noqa: E402
from candle_restart.runtime.preempt import REQUEST, Preempted  # noqa: E402
from candle_restart.torch import CandleCkptPyTorch  # noqa: E402


def _objects() -> dict[str, object]:
    torch.manual_seed(2)
    model = nn.Linear(4, 1)
    return {"model": model, "optimizer": torch.optim.Adam(model.parameters(), lr=0.1)}


def _epochs(ckpt: CandleCkptPyTorch, given: dict[str, object], first: int, last: int) -> None:
    model, opt = given["model"], given["optimizer"]
    x = torch.randn(8, 4)
    for epoch in range(first, last):
        opt.zero_grad()  # type: ignore[attr-defined]
        loss = model(x).pow(2).mean()  # type: ignore[operator]
        loss.backward()
        opt.step()  # type: ignore[attr-defined]
        ckpt.ckpt_epoch(epoch, loss.item())


def test_restart_falls_back_past_a_checkpoint_that_fails_its_crc(tmp_path: Path) -> None:
    params = {"epochs": 2, "ckpt_directory": str(tmp_path), "ckpt_checksum": True}
    ckpt = CandleCkptPyTorch(params, verbose=False)
    given = _objects()
    ckpt.set_model(given)
    _epochs(ckpt, given, 0, 2)
    model_file = tmp_path / "epochs" / "002" / "model.h5"
    data = bytearray(model_file.read_bytes())
    data[-1] ^= 0xFF  # one bit of the last tensor
    model_file.write_bytes(bytes(data))
    again = CandleCkptPyTorch(params, verbose=False)
    again.set_model(_objects())
    J = again.restart()
    assert J is not None and J["epoch"] == 1
    log = (tmp_path / "ckpt.log").read_text()
    assert "epochs/002" in log and "restarting: epoch=1" in log


def test_two_tiers_drain_a_whole_verified_copy_to_the_shared_tier(tmp_path: Path) -> None:
    params = {
        "epochs": 2,
        "ckpt_directory": str(tmp_path / "shared"),
        "ckpt_local_directory": str(tmp_path / "local"),
    }
    ckpt = CandleCkptPyTorch(params, verbose=False)
    given = _objects()
    ckpt.set_model(given)
    _epochs(ckpt, given, 0, 2)  # the final epoch waits for its commit and its drain
    shared = tmp_path / "shared"
    assert os.readlink(shared / "last") == "epochs/002"
    info = verify_checkpoint(shared / "epochs" / "002", True)
    assert info.files is not None and set(info.files) == {"model.h5", "train_state.json"}
    log = (shared / "ckpt.log").read_text()  # written node-local first, then copied and verified
    assert "drain: epoch 2 copied to the shared tier and verified" in log


def test_the_walltime_halt_commits_inside_the_epoch_and_raises_preempted(tmp_path: Path) -> None:
    params = {"epochs": 3, "ckpt_directory": str(tmp_path), "ckpt_walltime": "1", "ckpt_halt_seconds": 5}
    ckpt = CandleCkptPyTorch(params, verbose=False)
    given = _objects()
    ckpt.set_model(given)
    loader = [torch.randn(2, 4) for _ in range(6)]
    try:
        with pytest.raises(Preempted) as caught:
            for batch, x in ckpt.enumerate(loader):
                given["optimizer"].zero_grad()  # type: ignore[attr-defined]
                given["model"](x).sum().backward()  # type: ignore[operator]
                given["optimizer"].step()  # type: ignore[attr-defined]
                ckpt.batch_end(batch)
        assert caught.value.code == 75 and caught.value.cause == "timeout"
    finally:
        REQUEST.clear()
        ckpt.on_train_end()
    info = read_ckpt_info(tmp_path / "last" / "ckpt-info.json")
    assert info.position is not None and (info.position.epoch, info.position.batch) == (1, 1)


def test_with_two_tiers_the_halt_commits_on_the_shared_tier_itself(tmp_path: Path) -> None:
    """The stop's checkpoint (a torch snapshot, its copies deferred) is written once, to the shared tier."""
    from candle_restart.ckpt.drain import local_root

    shared = tmp_path / "shared"
    params = {
        "epochs": 3,
        "ckpt_directory": str(shared),
        "ckpt_local_directory": str(tmp_path / "local"),
        "ckpt_walltime": "1",
        "ckpt_halt_seconds": 5,
    }
    ckpt = CandleCkptPyTorch(params, verbose=False)
    given = _objects()
    ckpt.set_model(given)
    loader = [torch.randn(2, 4) for _ in range(6)]
    try:
        with pytest.raises(Preempted):
            for batch, x in ckpt.enumerate(loader):
                given["optimizer"].zero_grad()  # type: ignore[attr-defined]
                given["model"](x).sum().backward()  # type: ignore[operator]
                given["optimizer"].step()  # type: ignore[attr-defined]
                ckpt.batch_end(batch)
    finally:
        REQUEST.clear()
        ckpt.on_train_end()
    info = verify_checkpoint(shared / "last", True)
    assert info.position is not None and (info.position.epoch, info.position.batch) == (1, 1)
    assert not (local_root(tmp_path / "local", shared) / "epochs" / "001").exists()  # never node-local
    log = (shared / "ckpt.log").read_text()
    assert "drain: epoch 1 is on the shared tier" in log and "copied to the shared tier" not in log
