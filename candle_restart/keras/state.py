"""The training state a Keras 3 model needs to resume exactly, and where each piece of it lies.

Saved, by position: every ``model.variables`` entry (weights and the state
of each layer's seed generator, so Dropout draws the same masks after a
restart), every ``optimizer.variables`` entry (iteration count, which drives
learning-rate schedules, and the moments of Adam and friends), and, for a
checkpoint taken inside an epoch, the metric accumulators of that epoch (so
the epoch's logged metrics, and with them the best-checkpoint choice, come
out as if it had never stopped).  Variables are matched by position and
checked by shape: layer names differ between processes that build several
models, positions do not.  The ``rng`` group holds the process-wide
generators training draws from outside the seed generators (torch's, NumPy's
and Python's global ones: `candle_restart.keras.rngs`), by name; a restart
parks them on the model (`take_rngs`) for the callback to put back where the
resumed training reaches the point the checkpoint was taken at.

``train_state.npz`` holds the manifest (``__manifest__``: per group, each
variable's path, shape and dtype) and the arrays.  Each tensor is stored
once per checkpoint: a variable the model file already holds (weights, and
the optimizer's variables in a ``.keras``) is listed with ``at``, its
dataset in the model file's HDF5 weights, and ``model_file`` names that
file (``name``, and ``member``: the HDF5 weights inside a ``.keras`` zip, or
null for a ``.weights.h5``); only the rest (seed-generator state, metric
accumulators, whatever Keras does not save) is an array ``GROUP/INDEX`` of
the ``.npz``.  A manifest without ``at`` (older checkpoints, and the
synchronous ``model.save`` path) has every array in the ``.npz``.

CANDLE's benchmarks restart *before* ``model.compile``, when the model has
no optimizer yet.  `load_state` then assigns the model's variables (weights
and seed state) at once and parks the optimizer's saved values on the model
(`pending_optimizer`); `apply_pending_optimizer` assigns them, checked the
same way, once the optimizer exists and before it has taken a step (the
callback does so at the start of training), so both orders resume exactly.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from candle_restart.errors import CorruptCheckpointError, RestartError
from candle_restart.keras import rngs
from candle_restart.keras.h5stream import check_whole, read_weights
from candle_restart.keras.npz import ALIGNMENT, read_npz, write_npz
from candle_restart.records.trainstate import MANIFEST_MEMBER, TrainManifest, VarEntry, entry


@dataclass
class PendingOptimizer:
    """Optimizer values read by a restart before the model had an optimizer."""

    path: Path  # the train_state.npz they came from (for error messages)
    saved: list[VarEntry]  # their manifest entries (path, shape, dtype)
    values: list[np.ndarray]


# model -> its parked optimizer values; weak, so a discarded model takes its values with it.
_PENDING: weakref.WeakKeyDictionary[Any, PendingOptimizer] = weakref.WeakKeyDictionary()
# model -> the generator states of the checkpoint last loaded into it, by name (see `take_rngs`).
_RNGS: weakref.WeakKeyDictionary[Any, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


def _optimizer_variables(model: Any) -> list[Any]:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    return list(optimizer.variables)


def metric_variables(model: Any) -> list[Any]:
    """The accumulators of the model's compiled metrics (loss tracker included), in order."""
    return [v for metric in getattr(model, "metrics", []) for v in metric.variables]


def state_arrays(
    model: Any,
    copy: Callable[[Any], np.ndarray],
    include_metrics: bool = False,
    located: Mapping[int, str] | None = None,
    model_file: tuple[str, str | None] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of ``train_state.npz`` by member name, each variable's value taken by ``copy``.

    ``located`` maps ``id(variable)`` to its dataset in the HDF5 weights of
    ``model_file`` (its name, and the zip member holding them or None): such
    a variable is listed with ``at`` and not copied here.
    """
    groups = {"model": list(model.variables), "optimizer": _optimizer_variables(model)}
    if include_metrics:
        groups["metrics"] = metric_variables(model)
    located = located if model_file is not None and located else {}
    arrays: dict[str, np.ndarray] = {}
    manifest: dict[str, list[VarEntry]] = {}
    for group, variables in groups.items():
        manifest[group] = []
        for i, variable in enumerate(variables):
            at = located.get(id(variable))
            if at is None:
                value = copy(variable)
                arrays[f"{group}/{i}"] = value
                manifest[group].append(entry(variable.path, value.shape, str(value.dtype)))
            else:
                manifest[group].append(entry(variable.path, variable.shape, str(variable.dtype), at))
    manifest["rng"] = []
    for i, (name, state) in enumerate(rngs.capture().items()):
        arrays[f"rng/{i}"] = state
        manifest["rng"].append(entry(name, state.shape, str(state.dtype)))
    text = TrainManifest(manifest, model_file if located and model_file is not None else None).to_text()
    arrays[MANIFEST_MEMBER] = np.array(text)
    return arrays


def save_state(model: Any, path: Path, include_metrics: bool = False) -> None:
    """Write the model's and optimizer's variables (and metric accumulators) to a new ``.npz``."""
    with open(path, "wb") as f:
        write_npz(f, state_arrays(model, lambda v: np.asarray(v.numpy()), include_metrics))


def _check_fit(path: Path, group: str, saved: list[VarEntry], variables: list[Any]) -> None:
    if len(saved) != len(variables):
        raise CorruptCheckpointError(
            str(path), group, f"holds {len(saved)} variables, the model has {len(variables)}"
        )
    for i, variable in enumerate(variables):
        if list(saved[i].shape) != list(variable.shape):
            raise CorruptCheckpointError(
                str(path),
                group,
                f"variable {i} ({saved[i].path}) has shape {list(saved[i].shape)}, "
                f"the model's {variable.path} has {list(variable.shape)}",
            )


def saved_arrays(
    path: Path, check_crc: bool = True, verified: Collection[str] = (), deferred: dict[str, str] | None = None
) -> tuple[TrainManifest, dict[str, list[np.ndarray]]]:
    """The manifest of the ``train_state.npz`` at ``path`` and every group's arrays, by position.

    Arrays listed with ``at`` are read from the model file beside ``path``
    (all of them in one read of its HDF5 weights), whose CRC-32 in the zip is
    checked unless the model file's name is in ``verified`` (files whose own
    CRC-32 the caller has just checked).  ``deferred`` maps files whose whole
    CRC-32 restart left to this read to the value ``ckpt-info.json`` records: the
    model file's is checked as it is read (`read_weights`, `LoadChecksumError`) and
    its name removed from ``deferred``.
    CorruptCheckpointError (naming the file) if either file is malformed or
    the manifest refers to something missing.
    """
    data = read_npz(path, check_crc)
    try:
        manifest = TrainManifest.from_text(str(data.pop(MANIFEST_MEMBER)))  # its shape checked there
        groups = {g: list(e) for g, e in manifest.groups.items()}
        wanted = [e.at for entries in groups.values() for e in entries if e.at is not None]
        located: dict[str, np.ndarray] = {}
        if wanted:
            if manifest.model_file is None:
                raise ValueError("model_file: must name the model file its entries (at) are in")
            name, member = manifest.model_file
            check = name not in verified
            file_crc = None if deferred is None else deferred.get(name)
            located = read_weights(Path(path).parent / name, member, sorted(set(wanted)), check, file_crc)
            if deferred is not None:
                deferred.pop(name, None)
        if deferred:  # not read above: checked apart, still before anything is assigned
            for name, crc in sorted(deferred.items()):
                check_whole(Path(path).parent / name, crc)
            deferred.clear()
        values = {
            group: [located[e.at] if e.at is not None else data[f"{group}/{i}"] for i, e in enumerate(entries)]
            for group, entries in groups.items()
        }
        for group, entries in groups.items():
            for i, (saved_entry, value) in enumerate(zip(entries, values[group], strict=True)):
                if list(value.shape) != list(saved_entry.shape):
                    raise ValueError(
                        f"{group}/{i} has shape {list(value.shape)}, its manifest says otherwise"
                    )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a forged or torn manifest
        raise CorruptCheckpointError(
            str(path), None, f"is not a training-state file this model can read: {exc!r}"
        ) from exc
    return manifest, values


def load_state(
    model: Any, path: Path, check_crc: bool = True, verified: Collection[str] = (), deferred: dict[str, str] | None = None
) -> list[np.ndarray] | None:
    """Assign the saved variables to ``model`` and its optimizer; return saved metric accumulators.

    Raises CorruptCheckpointError if the file does not fit the model (a
    different architecture or optimizer) before assigning anything.  A model
    without an optimizer (not compiled yet) gets its own variables now; the
    optimizer's saved values, checked against nothing yet, are parked for
    `apply_pending_optimizer` (replacing any parked earlier).  A file saved
    without optimizer values (its model was not compiled) restores the model's
    variables and leaves the optimizer as it is.  Metric accumulators (present
    in mid-epoch checkpoints, else None) are returned rather than assigned,
    because Keras builds and resets metrics inside ``fit``; `add_metrics`
    merges them after the resumed epoch's first batch.  ``check_crc=False``
    skips the zip's per-member CRCs of the state file (the caller has just
    verified the whole file's CRC-32); ``verified`` names the files so
    verified, for the model file the arrays may come from, and ``deferred`` the
    files whose CRC-32 is checked while they are read (`saved_arrays`): all before
    anything is assigned.
    """
    compiled = getattr(model, "optimizer", None) is not None
    manifest, saved = saved_arrays(path, check_crc, verified, deferred)
    saved_optimizer = manifest.entries("optimizer")
    groups = {"model": list(model.variables)}
    if compiled and saved_optimizer:
        groups["optimizer"] = _optimizer_variables(model)
    for group, variables in groups.items():
        _check_fit(path, group, manifest.entries(group), variables)
    values = {group: saved.get(group, []) for group in groups}
    parked = saved.get("optimizer", []) if not compiled else []
    metrics = saved.get("metrics") if "metrics" in manifest.groups else None
    generators = {e.path: v for e, v in zip(manifest.entries("rng"), saved.get("rng", []), strict=True)}
    try:
        for name, state in generators.items():
            rngs.check(name, state)
    except ValueError as exc:
        raise CorruptCheckpointError(str(path), "rng", str(exc)) from None
    for group, variables in groups.items():  # every array is checked before any variable changes
        for i, (variable, value) in enumerate(zip(variables, values[group], strict=True)):
            if tuple(value.shape) != tuple(variable.shape):
                raise CorruptCheckpointError(
                    str(path),
                    group,
                    f"variable {i} holds shape {list(value.shape)}, {variable.path} has {list(variable.shape)}",
                )
    for group, variables in groups.items():
        for variable, value in zip(variables, values[group], strict=True):
            _assign(variable, value)
    _PENDING.pop(model, None)
    if parked:
        _PENDING[model] = PendingOptimizer(Path(path), saved_optimizer, parked)
    _RNGS[model] = generators
    return metrics


def take_rngs(model: Any) -> dict[str, np.ndarray] | None:
    """The generator states the last restart of ``model`` read (once; None after, or if none).

    Empty for a checkpoint written before they were saved.
    """
    return _RNGS.pop(model, None)


def pending_optimizer(model: Any) -> PendingOptimizer | None:
    """The optimizer values a restart parked for ``model`` (not compiled then), or None."""
    return _PENDING.get(model)


def apply_pending_optimizer(model: Any) -> PendingOptimizer | None:
    """Assign the parked optimizer values once ``model`` has an optimizer; return what was applied.

    None (nothing changes) when nothing is parked or the model still has no
    optimizer.  The optimizer is built if it is not yet.  Assigns nothing and
    keeps the values parked when it raises: CorruptCheckpointError if they do
    not fit the optimizer (``compile`` was given another kind), RestartError
    if the optimizer has already taken steps (its own state is newer than the
    checkpoint's; overwriting it would silently mix two trainings).
    """
    pending = _PENDING.get(model)
    if pending is None or getattr(model, "optimizer", None) is None:
        return None
    variables = _optimizer_variables(model)
    _check_fit(pending.path, "optimizer", pending.saved, variables)
    steps = int(np.asarray(model.optimizer.iterations))
    if steps:
        raise RestartError(
            str(pending.path),
            "optimizer",
            f"its values wait for an optimizer that has not trained yet, but this one has taken {steps} "
            "step(s): restart before training (before or after compile)",
        )
    for variable, value in zip(variables, pending.values, strict=True):
        _assign(variable, value)
    del _PENDING[model]
    return pending


def _assign(variable: Any, value: np.ndarray) -> None:
    """``variable.assign(value)``; under TensorFlow, handing over ``value``'s buffer instead of copying it.

    ``value`` must be a private array nobody else holds (a fresh read).
    TensorFlow aborts the process on an unaligned buffer, so only aligned ones are handed over.
    """
    if keras.backend.backend() == "tensorflow" and _adoptable(value, variable):
        import tensorflow as tf

        try:
            variable.assign(tf.experimental.dlpack.from_dlpack(value.__dlpack__()))
            return
        except (TypeError, ValueError, BufferError, tf.errors.OpError):
            pass
    variable.assign(value)


def _adoptable(value: np.ndarray, variable: Any) -> bool:
    try:
        same_dtype = value.dtype == np.dtype(variable.dtype)
    except TypeError:  # a dtype NumPy does not know by name (bfloat16)
        return False
    return same_dtype and value.ndim > 0 and value.flags.c_contiguous and value.ctypes.data % ALIGNMENT == 0


def add_metrics(model: Any, values: list[np.ndarray]) -> bool:
    """Add saved metric accumulators to the current ones; False (nothing changed) if they do not fit.

    Keras' metric states are sums (totals, counts, confusion counts), so adding
    the saved part of an epoch to the part seen since the restart gives what an
    uninterrupted epoch accumulates, bit for bit (float addition commutes).
    """
    variables = metric_variables(model)
    if len(variables) != len(values) or any(
        tuple(v.shape) != a.shape for v, a in zip(variables, values, strict=True)
    ):
        return False
    for variable, value in zip(variables, values, strict=True):
        variable.assign(variable + value.astype(variable.dtype))
    return True
