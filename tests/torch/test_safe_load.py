"""What a PyTorch checkpoint holds and how it is loaded: no pickle runs, CANDLE's own files still
restart, each tensor is written once, and what cannot be saved is refused in one line."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Protocol

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (make test-backends)")
from torch import Generator, nn  # noqa: E402
from torch.amp import GradScaler  # noqa: E402
from torch.optim import Optimizer  # noqa: E402
from torch.optim.lr_scheduler import LRScheduler  # noqa: E402

from candle_restart import CandleCkptPyTorch  # noqa: E402
from candle_restart.errors import CorruptCheckpointError  # noqa: E402
from candle_restart.records.ckptinfo import CkptInfo, FileEntry, read_ckpt_info  # noqa: E402
from candle_restart.runtime.preempt import PreemptionRequest  # noqa: E402
from candle_restart.torch.state import restore_rng  # noqa: E402


class _Stateful(Protocol):
    def state_dict(self) -> object: ...


class Payload:
    """A pickle that runs code when loaded: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _setup(
    directory: Path, epochs: int = 2, **params: object
) -> tuple[CandleCkptPyTorch, nn.Module, Optimizer]:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    ckpt = CandleCkptPyTorch({"epochs": epochs, "ckpt_directory": str(directory), **params}, verbose=False)
    ckpt.set_model({"model": model, "optimizer": opt})
    return ckpt, model, opt


def _train(directory: Path, epochs: int = 2) -> nn.Module:
    ckpt, model, opt = _setup(directory, epochs)
    ckpt.restart(model)
    x = torch.randn(16, 4)
    for epoch in range(epochs):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        ckpt.ckpt_epoch(epoch, loss.item())
    return model


def _replace_model_file(checkpoint: Path, data: bytes) -> None:
    """What an attacker with write access does: swap model.h5 and fix its size and CRC-32 in ckpt-info.json."""
    (checkpoint / "model.h5").write_bytes(data)
    info = read_ckpt_info(checkpoint / "ckpt-info.json")
    files = dict(info.files or {})
    files["model.h5"] = FileEntry(len(data), str(zlib.crc32(data)))
    fixed: CkptInfo = info.with_files(files, files["model.h5"].crc32, info.state_file)
    (checkpoint / "ckpt-info.json").write_bytes(fixed.to_bytes())


@pytest.mark.parametrize("kind", ["torch.save", "pickle"])
def test_a_pickle_that_would_run_code_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    _train(tmp_path / "ckpts")
    marker = tmp_path / "ran"
    payload = {"model_state_dict": Payload(marker), "optimizer_state_dict": {}}
    if kind == "torch.save":
        torch.save(payload, tmp_path / "evil")
        data = (tmp_path / "evil").read_bytes()
    else:
        data = pickle.dumps(payload, protocol=2)
    _replace_model_file(tmp_path / "ckpts" / "last", data)
    ckpt, model, _ = _setup(tmp_path / "ckpts")
    with pytest.raises(CorruptCheckpointError) as caught:
        ckpt.restart(model)
    message = str(caught.value)
    assert "\n" not in message and message.endswith(
        "model.h5: refused: a pickle that would run code when loaded (it asks for posix.system)"
    )
    assert not marker.exists()


def test_a_checkpoint_candle_wrote_with_torch_save_restarts_model_and_optimizer(tmp_path: Path) -> None:
    trained = _train(tmp_path / "trained")
    trained_opt = torch.optim.AdamW(trained.parameters(), lr=0.01)
    # candle_lib's layout and files, as its write_model_backend and write_json leave them: a
    # torch.save pickle under CANDLE's HDF5 name, CANDLE's keys only, an absolute last link.
    checkpoint = tmp_path / "ckpts" / "epochs" / "002"
    checkpoint.mkdir(parents=True)
    candle_state = {
        "epoch": 2,
        "model_state_dict": trained.state_dict(),
        "optimizer_state_dict": trained_opt.state_dict(),
        "loss": 0,
    }
    torch.save(candle_state, checkpoint / "model.h5")
    candle_info = {
        "epoch": 2,
        "save_best_metric": "val_loss",
        "best_metric_last": 0.5,
        "model_file": "model.h5",
        "checksum": "__DISABLED__",
        "timestamp": "2024-01-01 00:00:00",
        "time_elapsed": "__FIRST__",
        "metadata": None,
    }
    (checkpoint / "ckpt-info.json").write_text(json.dumps(candle_info))
    (tmp_path / "ckpts" / "last").symlink_to(checkpoint)
    ckpt, model, _ = _setup(tmp_path / "ckpts")
    J = ckpt.restart(model)
    assert J is not None and J["epoch"] == 2
    for a, b in zip(model.state_dict().values(), trained.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    log = (tmp_path / "ckpts" / "ckpt.log").read_text()
    assert "a checkpoint CANDLE wrote: model and optimizer restored, RNG state not saved in it" in log


def test_model_h5_is_a_safetensors_file_holding_each_tensor_once(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = nn.Linear(6, 6)
    decoder = nn.Linear(6, 6)
    decoder.weight = encoder.weight  # tied: two state_dict keys, one tensor
    model = nn.Sequential(encoder, nn.ReLU(), decoder)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ckpt = CandleCkptPyTorch({"epochs": 1, "ckpt_directory": str(tmp_path)}, verbose=False)
    ckpt.set_model({"model": model, "optimizer": opt})
    ckpt.ckpt_epoch(0, 1.0)
    data = (tmp_path / "last" / "model.h5").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])  # safetensors, read by hand from its specification
    header = json.loads(data[8 : 8 + n])
    assert header["__metadata__"]["format"] == "pt" and (8 + n) % 64 == 0
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    assert (
        spans[0][0] == 0
        and all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        and spans[-1][1] == len(data) - 8 - n
    )
    assert "model/0.weight" in header and "model/2.weight" not in header  # the tied weight once
    assert header["model/0.weight"] == {
        "dtype": "F32",
        "shape": [6, 6],
        "data_offsets": list(header["model/0.weight"]["data_offsets"]),
    }
    state = json.loads((tmp_path / "last" / "train_state.json").read_text())
    assert state["parts"]["model"]["2.weight"] == {"$tensor": "model/0.weight"}
    # Restarted into a fresh tied model, both keys get the value, and stay tied.
    fresh_enc, fresh_dec = nn.Linear(6, 6), nn.Linear(6, 6)
    fresh_dec.weight = fresh_enc.weight
    fresh = nn.Sequential(fresh_enc, nn.ReLU(), fresh_dec)
    again = CandleCkptPyTorch({"epochs": 1, "ckpt_directory": str(tmp_path)}, verbose=False)
    again.set_model({"model": fresh, "optimizer": torch.optim.SGD(fresh.parameters(), lr=0.1)})
    assert again.restart(fresh) is not None
    assert torch.equal(fresh_dec.weight, encoder.weight) and fresh_dec.weight is fresh_enc.weight


# `preemption`: the refused checkpoint raises out of the loop's first ckpt_epoch, which armed the
# handlers; nothing ends this "training", so they stay armed as they would until the process ends.
def test_what_cannot_be_saved_is_refused_in_one_line(tmp_path: Path, preemption: PreemptionRequest) -> None:
    ckpt = CandleCkptPyTorch({"epochs": 1, "ckpt_directory": str(tmp_path)}, verbose=False)
    with pytest.raises(TypeError, match=r"^set_model: 'loss_fn': a builtins.function has no state_dict"):
        ckpt.set_model({"model": nn.Linear(2, 2), "loss_fn": lambda x: x})

    class Holder:
        def state_dict(self) -> dict[str, object]:
            return {"callback": print}

        def load_state_dict(self, state: dict[str, object]) -> None:
            pass

    ckpt.set_model({"model": nn.Linear(2, 2), "holder": Holder()})
    with pytest.raises(
        TypeError,
        match=r"^checkpoint: holder/callback: a builtins.builtin_function_or_method cannot be saved without pickle$",
    ):
        ckpt.ckpt_epoch(0, 1.0)


def test_a_cuda_rng_state_is_set_aside_with_a_line_on_a_node_without_cuda(tmp_path: Path) -> None:
    # A fake only for what this machine lacks: a CUDA RNG state, as a GPU node's checkpoint holds one.
    if torch.cuda.is_available():
        pytest.skip("this node has CUDA: the state is restored, not set aside")
    lines: list[str] = []
    state = {
        "torch": torch.get_rng_state(),
        "cuda": [torch.get_rng_state()],
        "numpy": __import__("numpy").random.get_state(),
        "python": __import__("random").getstate(),
    }
    restore_rng(state, {}, lines.append)
    assert lines == [
        "restarting: the checkpoint was written with CUDA; its CUDA RNG state is not used on this node"
    ]


def test_schedulers_a_scaler_and_generators_come_back(tmp_path: Path) -> None:
    def build() -> tuple[
        dict[str, object], tuple[nn.Linear, Optimizer, LRScheduler, LRScheduler, GradScaler, Generator]
    ]:
        torch.manual_seed(1)
        model = nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheds = [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=4),
            torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
        ]
        scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
        generator = torch.Generator().manual_seed(5)
        loader = torch.utils.data.DataLoader(list(range(10)), batch_size=2, shuffle=True, generator=generator)
        given = {
            "model": model,
            "optimizer": opt,
            "scheduler": scheds,
            "scaler": scaler,
            "dataloader": loader,
        }
        return given, (model, opt, scheds[0], scheds[1], scaler, generator)

    given, objects = build()
    model, opt, s1, s2, scaler, generator = objects
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3)).sum().backward()
        opt.step()
        s1.step()
        s2.step()
    scaler._scale = torch.tensor(2.0)  # as after a backoff
    torch.randperm(5, generator=generator)
    ckpt = CandleCkptPyTorch({"epochs": 1, "ckpt_directory": str(tmp_path)}, verbose=False)
    ckpt.set_model(given)
    ckpt.ckpt_epoch(0, 1.0)
    expected_draw = torch.randperm(10, generator=generator)

    given2, objects2 = build()
    again = CandleCkptPyTorch({"epochs": 1, "ckpt_directory": str(tmp_path)}, verbose=False)
    again.set_model(given2)
    assert again.restart() is not None
    stateful: tuple[_Stateful, ...] = objects[:5]  # all but the generator
    stateful2: tuple[_Stateful, ...] = objects2[:5]
    for before, after in zip(stateful, stateful2, strict=True):
        assert str(before.state_dict()) == str(after.state_dict())
    assert objects2[4].get_scale() == 2.0
    assert torch.equal(torch.randperm(10, generator=objects2[5]), expected_draw)
    assert (
        "dataloader.generator"
        in json.loads((tmp_path / "last" / "train_state.json").read_text())["rng"]["generators"]
    )


def test_a_subclass_with_candles_write_model_backend_is_honoured_and_restarts(tmp_path: Path) -> None:
    class CandleWriter(CandleCkptPyTorch):
        def write_model_backend(self, model: object, epoch: int) -> None:  # candle_lib's, verbatim in effect
            m, o = self.model["model"], self.model["optimizer"]
            torch.save(
                {
                    "epoch": epoch,
                    "model_state_dict": m.state_dict(),
                    "optimizer_state_dict": o.state_dict(),
                    "loss": 0,
                },
                self.model_file,
            )

    _unused, model, opt = _setup(tmp_path, 1)
    writer = CandleWriter(
        {"epochs": 1, "ckpt_directory": str(tmp_path), "ckpt_checksum": True}, verbose=False
    )
    writer.set_model({"model": model, "optimizer": opt})
    writer.ckpt_epoch(0, 1.0)
    assert sorted(p.name for p in (tmp_path / "last").iterdir()) == ["ckpt-info.json", "model.h5"]
    again, fresh, _ = _setup(tmp_path, 1)
    assert again.restart(fresh) is not None
    assert all(
        torch.equal(a, b)
        for a, b in zip(fresh.state_dict().values(), model.state_dict().values(), strict=True)
    )
