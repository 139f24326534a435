"""A PyTorch checkpoint captured in host memory: what training waits for when commits are asynchronous.

`TensorCopies` copies each tensor into a host buffer it keeps from one checkpoint to the next
(pinned memory for a CUDA tensor, copied without blocking and synchronised once), so a snapshot
costs one memory copy per tensor and no fresh allocation.  With ``private=False`` (synchronous
commits: training waits for the write anyway) CPU tensors are not copied at all.

`take_snapshot` collects the record and the tensors (`candle_restart.torch.state.collect`);
`TorchSnapshot.write` runs in the commit thread and touches only those copies: the small
``train_state.json`` first, then ``model.h5`` (`candle_restart.torch.tensorio.write_tensors`).
It implements `candle_restart.ckpt.sink.Snapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from candle_restart.ckpt.layout import TORCH_STATE_FILE
from candle_restart.ckpt.sink import CheckpointFiles
from candle_restart.records.torchstate import TorchState
from candle_restart.torch.state import Parts, Rng, capture_rng, collect
from candle_restart.torch.tensorio import write_tensors


class TensorCopies:
    """Reusable host buffers, one per tensor name, refilled at each snapshot."""

    def __init__(self, private: bool = True) -> None:
        self.private = private
        self._buffers: dict[str, torch.Tensor] = {}
        self._cuda = False

    def reset(self) -> None:
        """Forget every buffer (other objects: the old buffers would never be reused)."""
        self._buffers = {}

    def copy(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """A host copy of ``tensor`` as it is now, contiguous (private unless synchronous and on the CPU)."""
        tensor = tensor.detach()
        if not self.private and tensor.device.type == "cpu":
            return tensor.contiguous()
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype:
            pin = tensor.device.type == "cuda"
            buffer = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu", pin_memory=pin)
            self._buffers[name] = buffer
        on_device = tensor.device.type != "cpu"
        buffer.copy_(tensor, non_blocking=on_device)
        self._cuda = self._cuda or tensor.device.type == "cuda"
        return buffer

    def settle(self) -> None:
        """Wait for the copies started without blocking (CUDA tensors)."""
        if self._cuda:
            torch.cuda.synchronize()
            self._cuda = False


@dataclass
class TorchSnapshot:
    """Both files of one PyTorch checkpoint, in memory (implements `candle_restart.ckpt.sink.Snapshot`)."""

    model_file: str
    record: TorchState
    tensors: dict[str, torch.Tensor]

    def write(self, files: CheckpointFiles) -> None:
        """Write ``train_state.json``, then the tensors file (each fsynced when closed)."""
        with files.create(TORCH_STATE_FILE) as sink:
            sink.write(self.record.to_json())
        with files.create(self.model_file) as sink:
            write_tensors(sink, self.tensors, {"format": "pt", "state": TORCH_STATE_FILE})

    def discard(self) -> None:
        """Nothing outside memory; the buffers stay with `TensorCopies` for the next snapshot."""


def take_snapshot(
    parts: Parts, copies: TensorCopies, model_file: str, epoch_rng: Rng | None
) -> TorchSnapshot:
    """Capture every part, the RNGs and (mid-epoch) the epoch's starting RNG, in host memory."""
    record, tensors = collect(parts, capture_rng(parts.generators), epoch_rng, copies.copy, model_file)
    copies.settle()
    return TorchSnapshot(model_file, record, tensors)
