"""A checkpoint holds each tensor once, restarts read each once, and old two-copy checkpoints still resume.

The old-format checkpoints in ``tests/keras/old_format/`` were written by the
code before the single-copy format (see its ``generate.py``); the same
procedure, run with today's code, gives the new-format cases.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pytest

from candle_restart.ckpt import CorruptCheckpointError
from candle_restart.ckpt.sink import FileSink
from candle_restart.keras import CandleCkptKeras
from candle_restart.keras.h5stream import Entry, H5Image, read_datasets
from candle_restart.keras.npz import ALIGNMENT, aligned_empty, read_npz, write_npz
from candle_restart.keras.state import load_state, saved_arrays
from tests.keras.old_format import generate

OLD = Path(__file__).resolve().parent / "old_format"


def _resume(source: Path, tmp_path: Path, weights_only: bool, compiled: bool) -> dict[str, np.ndarray]:
    """Restart a fresh model from ``source/ckpts`` (copied), train epoch 2; every variable after it."""
    shutil.copytree(source, tmp_path / "run", symlinks=True)
    params = generate.params(tmp_path / "run" / "ckpts", weights_only)
    model = generate.model(compiled=compiled)
    callback = CandleCkptKeras(params, logger=None)
    J = callback.restart(model)
    assert J is not None and J["epoch"] == 1
    if not compiled:
        generate.compile_model(model)
    return _epoch_2(model, [callback])


def _epoch_2(model: Any, callbacks: list[Any]) -> dict[str, np.ndarray]:
    """Train ``model`` through epoch 2 of the fixture's data; every variable after it."""
    model.fit(
        generate.X,
        generate.Y,
        epochs=2,
        initial_epoch=1,
        batch_size=generate.BATCH,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    return generate.variables(model)


def _same(ours: dict[str, np.ndarray], expected_file: Path) -> bool:
    with np.load(expected_file) as expected:
        return _equal(ours, {k: expected[k] for k in expected.files})


def _equal(ours: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> bool:
    return sorted(expected) == sorted(ours) and all(expected[k].tobytes() == ours[k].tobytes() for k in ours)


def _continued_from_the_arrays(source: Path) -> dict[str, np.ndarray]:
    """Epoch 2 trained on, in this process, from the old checkpoint's own arrays assigned by hand.

    An old checkpoint's ``train_state.npz`` holds every model and optimizer variable.  Assigning them
    directly (no restart code involved) and training on gives what a bit-exact restart must give, with
    this machine's float kernels: the fixture's stored continuation was computed on another machine,
    whose kernels may round differently."""
    arrays = read_npz(source / "ckpts" / "epochs" / "001" / "train_state.npz")
    model = generate.model(compiled=True)
    model.optimizer.build(model.trainable_variables)
    for group, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        for i, variable in enumerate(variables):
            variable.assign(arrays[f"{group}/{i}"])
    return _epoch_2(model, [])


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "before-compile"])
@pytest.mark.parametrize("kind", ["keras", "weights_only"])
def test_an_old_two_copy_checkpoint_resumes_bit_for_bit(tmp_path: Path, kind: str, compiled: bool) -> None:
    state = OLD / kind / "ckpts" / "epochs" / "001" / "train_state.npz"
    manifest = json.loads(str(read_npz(state)["__manifest__"]))
    assert "model_file" not in manifest and all("at" not in e for e in manifest["model"])  # the old format
    ours = _resume(OLD / kind, tmp_path, kind == "weights_only", compiled)
    assert _equal(ours, _continued_from_the_arrays(OLD / kind))


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "before-compile"])
@pytest.mark.parametrize("weights_only", [False, True], ids=["keras", "weights_only"])
def test_a_new_checkpoint_resumes_bit_for_bit(tmp_path: Path, weights_only: bool, compiled: bool) -> None:
    generate.write(tmp_path / "new", weights_only)
    state = tmp_path / "new" / "ckpts" / "epochs" / "001" / "train_state.npz"
    stored = read_npz(state)
    manifest = json.loads(str(stored.pop("__manifest__")))
    rng = [name for name in stored if name.startswith("rng/")]  # the global generators (keras.rngs)
    assert [name for name in stored if name not in rng] == ["model/2"]  # the Dropout's seed-generator state
    assert len(rng) == len(manifest["rng"]) >= 2
    assert manifest["model_file"]["name"] == ("model.weights.h5" if weights_only else "model.keras")
    ours = _resume(tmp_path / "new", tmp_path, weights_only, compiled)
    assert _same(ours, tmp_path / "new" / "expected.npz")


def _dense(width: int) -> Any:
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(width), keras.layers.Dropout(0.1)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


@pytest.mark.parametrize("weights_only", [False, True])
def test_each_tensor_is_written_once(tmp_path: Path, weights_only: bool) -> None:
    model = _dense(256)
    state_bytes = sum(np.asarray(v).nbytes for v in [*model.variables, *model.optimizer.variables])
    params = {"epochs": 3, "ckpt_directory": str(tmp_path / "c"), "ckpt_save_weights_only": weights_only}
    ckpt = CandleCkptKeras(params, logger=None)
    ckpt.set_model(model)
    ckpt.save_epoch(1)
    written = sum(p.stat().st_size for p in (tmp_path / "c" / "epochs" / "001").iterdir())
    assert written / state_bytes < 1.05  # the old format wrote about 2.0
    _manifest, saved = saved_arrays(tmp_path / "c" / "last" / "train_state.npz")
    for group, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        assert all(np.array_equal(np.asarray(v), a) for v, a in zip(variables, saved[group], strict=True))
    if not weights_only:
        loaded = keras.models.load_model(tmp_path / "c" / "last" / "model.keras")  # compile state included
        pairs = zip(model.optimizer.variables, loaded.optimizer.variables, strict=True)
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in pairs)


def _checkpoint(tmp_path: Path) -> tuple[Any, Path]:
    model = _dense(16)
    ckpt = CandleCkptKeras({"epochs": 3, "ckpt_directory": str(tmp_path / "c")}, logger=None)
    ckpt.set_model(model)
    ckpt.save_epoch(1)
    return model, tmp_path / "c" / "epochs" / "001"


def test_a_flipped_byte_in_the_model_files_weights_is_refused(tmp_path: Path) -> None:
    _model, directory = _checkpoint(tmp_path)
    keras_file = directory / "model.keras"
    with zipfile.ZipFile(keras_file) as archive:
        info = archive.getinfo("model.weights.h5")
    data = bytearray(keras_file.read_bytes())
    data[info.header_offset + 100 + info.file_size // 2] ^= 0xFF
    keras_file.write_bytes(bytes(data))
    fresh = _dense(16)
    before = [np.asarray(v).copy() for v in fresh.variables]
    with pytest.raises(CorruptCheckpointError, match=r"model\.keras: model\.weights\.h5: .*fails its CRC-32"):
        load_state(fresh, directory / "train_state.npz")
    assert all(np.array_equal(a, np.asarray(v)) for a, v in zip(before, fresh.variables, strict=True))


@pytest.mark.parametrize(
    ("forge", "match"),
    [
        (lambda m: m["model"][0].update(at="layers/nowhere/vars/0"), "nowhere"),
        (lambda m: m["model_file"].update(name="../model.keras"), "a file name beside the state file"),
        (lambda m: m.pop("model_file"), "must name the model file"),
        (lambda m: m["optimizer"][2].update(shape=[3]), "its manifest says otherwise"),
    ],
    ids=["missing-dataset", "path-outside", "no-model-file", "wrong-shape"],
)
def test_a_forged_manifest_is_refused_before_assigning(tmp_path: Path, forge: Any, match: str) -> None:
    _model, directory = _checkpoint(tmp_path)
    state = directory / "train_state.npz"
    arrays = read_npz(state)
    manifest = json.loads(str(arrays["__manifest__"]))
    forge(manifest)
    arrays["__manifest__"] = np.array(json.dumps(manifest))
    with open(state, "wb") as f:
        write_npz(f, arrays)
    fresh = _dense(16)
    before = [np.asarray(v).copy() for v in fresh.variables]
    with pytest.raises(CorruptCheckpointError, match=match):
        load_state(fresh, state)
    assert all(np.array_equal(a, np.asarray(v)) for a, v in zip(before, fresh.variables, strict=True))


ENTRIES: list[Entry] = [
    ("layers/dense", None, {"0": np.arange(2048, dtype=np.float32).reshape(32, 64), "1": np.ones(5)}),
    ("optimizer", None, {"0": np.array(7, dtype=np.int64), "1": np.zeros((0, 2), np.float32)}),
    ("optimizer/f", None, {"0": np.asfortranarray(np.arange(6.0).reshape(2, 3))}),
    ("", {"name": "top"}, {}),
    ("layers/lookup", None, {"words": np.array([b"ab", b"cde"])}),  # not streamed: h5py writes it
]


def test_the_streamed_hdf5_file_is_what_h5py_reads(tmp_path: Path) -> None:
    image = H5Image(ENTRIES)
    with FileSink(tmp_path / "w.h5", checksum=True) as sink:  # no seek: written front to back
        image.write(sink)
    data = (tmp_path / "w.h5").read_bytes()
    assert len(data) == image.size
    with h5py.File(io.BytesIO(data), "r") as f:
        assert dict(f["vars"].attrs) == {"name": "top"}
        for path, _meta, values in ENTRIES:
            for key, value in values.items():
                assert np.array_equal(f[f"{path}/vars/{key}"][()], value)
    buffer = aligned_empty((len(data),), np.dtype(np.uint8))
    buffer[:] = np.frombuffer(data, np.uint8)
    names = ["layers/dense/vars/0", "layers/dense/vars/1", "optimizer/vars/0", "optimizer/f/vars/0"]
    found = read_datasets(buffer, names)
    for name in names:
        path, key = name.rsplit("/vars/", 1)
        assert np.array_equal(found[name], dict((p, v) for p, _m, v in ENTRIES)[path][key])
        assert found[name].base is not None  # a view of the buffer, not a copy
    assert found["layers/dense/vars/0"].ctypes.data % ALIGNMENT == 0  # large enough to be aligned
