"""A PyTorch checkpoint captured in host memory: what training waits for when commits are asynchronous.

`TensorCopies` copies each tensor into a host buffer it keeps from one checkpoint to the next
(pinned memory for a CUDA tensor), so a snapshot costs one memory copy per tensor and no fresh
allocation.  A CPU copy is a plain memory copy in the calling thread (torch's ``copy_`` would
hand it to its thread pool, which on busy cores costs far more than the copy).

The large part of a checkpoint, the parameters an optimizer trains and that optimizer's state,
changes only in ``optimizer.step()``.  Those tensors are not copied when the snapshot is taken
but by `Deferred.fill`: in the commit thread just before it writes, while training runs the next
batch's forward and backward passes; an optimizer step pre-hook (`CandleCkptPyTorch`) calls
`fill` too, so the step waits for the copy (making the pieces not yet taken, alongside the commit
thread) and the snapshot is of one instant.
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
CHUNK = 8 << 20  # bytes: the piece of a deferred copy one thread takes at a time


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
    """The copies a snapshot has yet to make, shared out between the threads that call `fill`.

    A CPU tensor's copy is cut into `CHUNK`-byte pieces; each caller of `fill` takes the next
    piece until none is left, then waits until every piece taken is done.  So the training thread,
    when its optimizer step must wait, copies alongside the commit thread instead of idling on a
    lock (NumPy's copy releases the GIL): the step waits at most about one copy, less where both
    threads have a core.
    A CUDA tensor is one piece (an asynchronous copy into pinned memory, settled by its copier).
    A copy that fails fails every `fill`, so a snapshot with a stale piece is never written.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pieces: list[tuple[torch.Tensor, torch.Tensor, int, int]] = []  # buffer, live, start, stop
        self._next = 0  # the first piece no thread has taken
        self._done = 0  # pieces copied (settled)
        self._error: BaseException | None = None

    def add(self, buffer: torch.Tensor, tensor: torch.Tensor) -> None:
        if tensor.device.type != "cpu" or not tensor.is_contiguous():
            self._pieces.append((buffer, tensor, 0, -1))  # -1: the whole tensor, by `copy_into`
            return
        for start in range(0, tensor.nbytes, CHUNK):
            self._pieces.append((buffer, tensor, start, min(start + CHUNK, tensor.nbytes)))

    def __bool__(self) -> bool:
        with self._cond:
            return self._done < len(self._pieces)

    def fill(self) -> None:
        """Copy pieces until none is left to take, then wait for the pieces other threads took.

        Any number of threads may call it, at once or later; each returns once every piece is
        copied (RuntimeError if one could not be)."""
        taken: list[torch.Tensor] = []
        error: BaseException | None = None
        while error is None:
            with self._cond:
                if self._next >= len(self._pieces):
                    break
                buffer, tensor, start, stop = self._pieces[self._next]
                self._next += 1
            taken.append(tensor)
            try:
                if stop < 0:
                    copy_into(buffer, tensor)
                else:
                    np.copyto(_bytes(buffer)[start:stop], _bytes(tensor)[start:stop], casting="no")
            except BaseException as exc:  # recorded for every filler, then raised here
                error = exc
        try:
            settle(taken)
        except BaseException as exc:
            error = error or exc
        with self._cond:
            self._done += len(taken)
            if error is not None:  # the pieces left are not copied by anyone: the snapshot is lost
                self._error = self._error or error
                del self._pieces[self._next :]
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._done >= len(self._pieces))
            self._pieces, self._next, self._done = [], 0, 0  # every copy made: let go of the live tensors
            failed = self._error
        if error is not None:
            raise error
        if failed is not None:
            raise RuntimeError(f"a snapshot copy failed in another thread: {failed!r}") from failed

    def drop(self) -> None:
        """Forget the copies no thread has taken (the snapshot will not be written)."""
        with self._cond:
            del self._pieces[self._next :]
            self._cond.notify_all()


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
