"""Restart checks the model file's CRC-32 while loading it (one read): corruption is still refused.

A real Keras model trains two epochs with ``ckpt_checksum``; the newest checkpoint's
``model.keras`` is then damaged on disk (same size, so only the CRC can tell) and a
fresh model restarts: it must set that checkpoint aside, fall back to epoch 1 and hold
epoch 1's weights exactly, as when every CRC was checked before the load.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from candle_restart.ckpt import CkptLayout
from candle_restart.keras import CandleCkptKeras


def _model() -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _params(root: Path) -> dict[str, object]:
    return {"epochs": 2, "ckpt_directory": str(root), "ckpt_checksum": True, "ckpt_keep_mode": "all"}


def _weights_member_offset(path: Path) -> tuple[int, int]:
    """Where the HDF5 weights member's data starts in ``model.keras``, and its length."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.weights.h5")
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = np.frombuffer(f.read(4), "<u2")
    return info.header_offset + 30 + int(name_length) + int(extra_length), info.file_size


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


WHERE = {
    "inside the weights member": lambda start, size: start + size // 2,
    "in a zip header before it": lambda start, size: 10,  # the first local header's time stamp: parses fine
    "in the central directory after it": lambda start, size: start + size + 40,
}


@pytest.mark.parametrize("where", sorted(WHERE))
def test_a_damaged_model_file_is_refused_while_loading_and_restart_falls_back(tmp_path: Path, where: str) -> None:
    root = tmp_path / "ckpts"
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model = _model()
    ckpt = CandleCkptKeras(_params(root), logger=None)
    ckpt.set_model(model)
    epoch_one: list[np.ndarray] = []

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            if epoch == 0:
                epoch_one.extend(np.array(v) for v in self.model.get_weights())

    model.fit(x, x.sum(axis=1), epochs=2, batch_size=8, verbose=0, callbacks=[ckpt, Keep()])
    ckpt.release_writer()
    layout = CkptLayout.at(root)
    model_file = layout.epoch_dir(2) / "model.keras"
    start, size = _weights_member_offset(model_file)
    _flip(model_file, WHERE[where](start, size))

    lines: list[str] = []
    fresh = _model()
    restarter = CandleCkptKeras(_params(root), logger=None)
    restarter.info = lines.append  # type: ignore[method-assign,assignment]
    J = restarter.restart(fresh)
    restarter.release_writer()
    assert J is not None and J["epoch"] == 1, lines
    # Found by the load's own read ("epochs/002 is unusable"), not by a verification pass before it
    # ("'last' -> epochs/002 is unusable"), and set aside all the same.
    first = next(line for line in lines if "epochs/002 is unusable" in line)
    assert first.startswith("restarting: epochs/002 is unusable: ") and "checksum mismatch" in first, lines
    assert [p.name[:11] for p in layout.epochs.iterdir() if ".corrupt-" in p.name] == ["002.corrupt"]
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(epoch_one, fresh.get_weights(), strict=True))
