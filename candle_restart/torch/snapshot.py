"""A PyTorch checkpoint captured in host memory: what training waits for when commits are asynchronous.

`TensorCopies` copies each tensor into a host buffer it keeps from one checkpoint to the next
(pinned memory for a CUDA tensor), so a snapshot costs one memory copy per tensor and no fresh
allocation.  A CPU copy is a plain memory copy in the calling thread (torch's ``copy_`` would
hand it to its thread pool, which on busy cores costs far more than the copy).

The large part of a checkpoint, the parameters an optimizer trains and that optimizer's state,
changes only in ``optimizer.step()``.  Those tensors are not copied when the snapshot is taken
but by `Deferred.fill`: in the commit thread just before it writes, while training runs the next
batch's forward and backward passes; an optimizer step pre-hook (`CandleCkptPyTorch`) calls
`fill` too, so the step waits for the copy (or makes it) and the snapshot is of one instant.
Everything else (buffers such as BatchNorm's, which a forward pass changes, the other parts'
tensors, RNG states) is copied at once.  Code that changes trained parameters in place outside
the optimizer's step, between a checkpoint and the next step, must call
``ckpt.wait_for_snapshot()`` first.

`take_snapshot` collects the record and the tensors (`candle_restart.torch.state.collect`);
`TorchSnapshot.write` runs in the commit thread and touches only those copies: the small
``train_state.json`` first, then ``model.h5`` (`candle_restart.torch.tensorio.write_tensors`).
It implements `candle_restart.ckpt.sink.Snapshot`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from candle_restart.ckpt.layout import TORCH_STATE_FILE
from candle_restart.ckpt.sink import CheckpointFiles
from candle_restart.records.torchstate import TorchState
from candle_restart.torch.state import Parts, Rng, capture_rng, collect
from candle_restart.torch.tensorio import write_tensors

DEFER_FROM = 1 << 16  # bytes: smaller tensors are copied at once


def _bytes(tensor: torch.Tensor) -> np.ndarray:
    """The bytes of a contiguous CPU tensor as a NumPy array sharing its memory."""
    return tensor.reshape(-1).view(torch.uint8).numpy()


def copy_into(buffer: torch.Tensor, tensor: torch.Tensor) -> None:
    if tensor.device.type == "cpu" and tensor.is_contiguous():
        np.copyto(_bytes(buffer), _bytes(tensor), casting="no")
    else:
        buffer.copy_(tensor, non_blocking=tensor.device.type != "cpu")


def settle(tensors: Iterable[torch.Tensor]) -> None:
    """Wait for copies from CUDA started without blocking."""
    if any(t.device.type == "cuda" for t in tensors):
        torch.cuda.synchronize()


class Deferred:
    """The copies a snapshot has yet to make; `fill` makes them once, in whichever thread comes first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (host buffer, live tensor)

    def add(self, buffer: torch.Tensor, tensor: torch.Tensor) -> None:
        self._pairs.append((buffer, tensor))

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def fill(self) -> None:
        """Copy every pending tensor into its buffer (a second call, or one in another thread, waits and returns)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            for buffer, tensor in pairs:
                copy_into(buffer, tensor)
            settle(t for _, t in pairs)

    def drop(self) -> None:
        """Forget the pending copies (the snapshot will not be written)."""
        with self._lock:
            self._pairs = []


class TensorCopies:
    """Reusable host buffers, one per tensor name, refilled at each snapshot."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def reset(self) -> None:
        """Forget every buffer (other objects: the old buffers would never be reused)."""
        self._buffers = {}

    def buffer(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """The host buffer for ``tensor`` under ``name`` (reused when shape and dtype match)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype:
            pin = tensor.device.type == "cuda"
            buffer = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu", pin_memory=pin)
            self._buffers[name] = buffer
        return buffer


@dataclass
class TorchSnapshot:
    """Both files of one PyTorch checkpoint, in memory (implements `candle_restart.ckpt.sink.Snapshot`)."""

    model_file: str
    record: TorchState
    tensors: dict[str, torch.Tensor]
    deferred: Deferred

    def write(self, files: CheckpointFiles) -> None:
        """Make the deferred copies, then write ``train_state.json`` and the tensors file (each fsynced)."""
        self.deferred.fill()
        with files.create(TORCH_STATE_FILE) as sink:
            sink.write(self.record.to_bytes())
        with files.create(self.model_file) as sink:
            write_tensors(sink, self.tensors, {"format": "pt", "state": TORCH_STATE_FILE})

    def discard(self) -> None:
        """Nothing outside memory; pending copies are dropped (the buffers stay for the next snapshot)."""
        self.deferred.drop()


def trained_tensors(parts: Parts) -> set[int]:
    """The addresses of the tensors only an optimizer's step changes: its parameters and its state."""
    found: set[int] = set()
    for obj in parts.objects.values():
        if isinstance(obj, torch.optim.Optimizer):
            for group in obj.param_groups:
                found.update(p.data_ptr() for p in group["params"])
            for state in obj.state.values():
                found.update(t.data_ptr() for t in state.values() if isinstance(t, torch.Tensor))
    return found


def take_snapshot(
    parts: Parts, copies: TensorCopies | None, model_file: str, epoch_rng: Rng | None
) -> TorchSnapshot:
    """Capture every part, the RNGs and (mid-epoch) the epoch's starting RNG, in host memory.

    ``copies`` None: the snapshot is written at once by this thread (synchronous commit), so CPU
    tensors are not copied at all.  Otherwise trained tensors are left to `Deferred.fill`.
    """
    deferred = Deferred()
    trained = trained_tensors(parts) if copies is not None else set()
    copied: list[torch.Tensor] = []

    def copy(name: str, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.detach()
        if copies is None:
            return tensor.contiguous() if tensor.device.type == "cpu" else tensor.to("cpu")
        buffer = copies.buffer(name, tensor)
        if tensor.nbytes >= DEFER_FROM and tensor.data_ptr() in trained:
            deferred.add(buffer, tensor)
        else:
            copy_into(buffer, tensor)
            copied.append(tensor)
        return buffer

    record, tensors = collect(parts, capture_rng(parts.generators), epoch_rng, copy, model_file)
    settle(copied)
    return TorchSnapshot(model_file, record, tensors, deferred)
