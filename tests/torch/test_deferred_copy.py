"""An asynchronous checkpoint's trained tensors are copied while the next batch runs, and the
optimizer's next step waits for that copy: the checkpoint holds the values of its instant."""

from __future__ import annotations

import threading
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")
from torch import Tensor, nn  # noqa: E402

from candle_restart.ckpt import commit  # noqa: E402
from candle_restart.torch import CandleCkptPyTorch, snapshot  # noqa: E402
from candle_restart.torch.snapshot import CHUNK, DEFER_FROM, Deferred  # noqa: E402
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


def _pending(count: int) -> tuple[Deferred, list[tuple[Tensor, Tensor]]]:
    pairs = [(torch.empty(CHUNK), torch.randn(CHUNK)) for _ in range(count)]  # 4 pieces each
    deferred = Deferred()
    for buffer, tensor in pairs:
        deferred.add(buffer, tensor)
    return deferred, pairs


def test_a_thread_that_waits_for_the_snapshot_copies_alongside_the_commit_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deferred, pairs = _pending(2)
    both = threading.Barrier(2, timeout=60)  # each thread's first piece waits until the other has one
    copiers: list[str] = []

    def copyto(dst: np.ndarray, src: np.ndarray, casting: str) -> None:
        name = threading.current_thread().name
        if name not in copiers:
            copiers.append(name)
            both.wait()
        np.copyto(dst, src, casting=casting)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot, "np", types.SimpleNamespace(copyto=copyto))
    commit_thread = threading.Thread(target=deferred.fill, name="commit")
    commit_thread.start()
    deferred.fill()  # the optimizer step's wait
    commit_thread.join(60)
    assert sorted(copiers) == ["MainThread", "commit"] and not deferred
    for buffer, tensor in pairs:
        assert torch.equal(buffer, tensor)


def test_a_copy_that_fails_fails_every_wait_and_none_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    deferred, _ = _pending(2)
    calls = []

    def copyto(dst: np.ndarray, src: np.ndarray, casting: str) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("the second piece")
        np.copyto(dst, src, casting=casting)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot, "np", types.SimpleNamespace(copyto=copyto))
    with pytest.raises(MemoryError, match="the second piece"):
        deferred.fill()
    with pytest.raises(RuntimeError, match=r"^a snapshot copy failed in another thread: MemoryError"):
        deferred.fill()  # the commit thread's: nothing half-copied is written
    assert len(calls) == 2
