"""A Keras checkpoint captured in host memory: what training waits for when commits are asynchronous.

`HostCopies` copies variable values into host arrays it keeps between
checkpoints, so a snapshot costs one memory copy per variable and no fresh
allocation (page faults dominated a naive copy in our measurements).  Only
one snapshot may be in flight, which the caller (`CandleCkpt.save_epoch`)
guarantees by waiting for the previous commit first.

`take_snapshot` captures both files of a checkpoint from one instant: the
model file (``model.keras`` or ``model.weights.h5``, through
`candle_restart.keras.archive`) and the exact-resume state
(``train_state.npz``: only what the model file lacks, with the place of
the rest; see `candle_restart.keras.state`).  Each variable is copied and
written once.  `KerasSnapshot.write` runs in the commit thread and touches
no TensorFlow object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from candle_restart.ckpt.layout import TRAIN_STATE_FILE
from candle_restart.ckpt.sink import CheckpointFiles
from candle_restart.keras import archive
from candle_restart.keras.npz import write_npz
from candle_restart.keras.state import state_arrays


def host_value(value: Any) -> np.ndarray:
    """A variable's or tensor's current value as a NumPy array (may share the backend's memory).

    Under TensorFlow a variable is read into a tensor (which aliases its buffer
    until the next update: copy-on-write keeps the tensor unchanged) and viewed
    without copying; ``np.asarray`` of the variable itself would copy.  The read
    is the bare ``ReadVariableOp`` (``read_value`` adds a name scope and an
    identity op: three times the cost, which a snapshot pays once per variable).
    """
    if isinstance(value, keras.Variable):
        value = value.value
    if keras.backend.backend() == "tensorflow":
        handle = getattr(value, "handle", None)
        if handle is not None and getattr(value, "dtype", None) is not None:
            import tensorflow as tf

            return np.asarray(tf.raw_ops.ReadVariableOp(resource=handle, dtype=value.dtype))
        return np.asarray(value)
    return np.asarray(keras.ops.convert_to_numpy(value))


class HostCopies:
    """Reusable host buffers, one per variable, refilled at each snapshot.

    With ``private=False`` (a synchronous commit: training waits for the
    write) values are not copied at all and no buffer is kept.
    """

    def __init__(self, private: bool = True) -> None:
        self.private = private
        self._buffers: dict[int, np.ndarray] = {}
        self._taken: dict[int, np.ndarray] = {}

    def end(self) -> None:
        """The snapshot is taken: the next one copies every variable again (and this one keeps its arrays)."""
        self._taken = {}

    def reset(self) -> None:
        """Forget every buffer (another model: the old variables' buffers would never be reused)."""
        self._buffers, self._taken = {}, {}

    def copy(self, value: Any) -> np.ndarray:
        """A private host copy of ``value`` as it is now (a variable's buffer is reused)."""
        if not isinstance(value, keras.Variable):
            return np.array(host_value(value), copy=True)
        key = id(value)
        taken = self._taken.get(key)
        if taken is not None:
            return taken
        source = host_value(value)
        if not self.private:
            self._taken[key] = source
            return source
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != source.shape or buffer.dtype != source.dtype:
            buffer = np.array(source, copy=True)
            self._buffers[key] = buffer
        else:
            np.copyto(buffer, source, casting="no")
        self._taken[key] = buffer
        return buffer


@dataclass
class KerasSnapshot:
    """Both files of one Keras checkpoint, in memory (implements `candle_restart.ckpt.sink.Snapshot`)."""

    model_file: str
    state: dict[str, np.ndarray]
    model: archive.CapturedModelFile

    def write(self, files: CheckpointFiles) -> None:
        """Write the small ``train_state.npz``, then the model file (each fsynced when closed)."""
        with files.create(TRAIN_STATE_FILE) as sink:
            write_npz(sink, self.state)
        with files.create(self.model_file) as sink:
            self.model.write(sink)

    def discard(self) -> None:
        self.model.discard()


def take_snapshot(
    model: Any,
    copies: HostCopies,
    capturer: archive.Capturer,
    model_file: str,
    weights_only: bool,
    include_metrics: bool,
) -> KerasSnapshot:
    """Capture ``model`` (weights, optimizer, seed and, mid-epoch, metric state) in host memory."""
    try:
        captured = capturer.capture(model, copies.copy, weights_only)
        try:
            where = (model_file, captured.weights_member)
            state = state_arrays(model, copies.copy, include_metrics, captured.located, where)
        except BaseException:
            captured.discard()
            raise
    finally:
        copies.end()
    return KerasSnapshot(model_file, state, captured)
