"""The training state a Keras 3 model needs to resume exactly, as one ``.npz`` file.

Saved, by position: every ``model.variables`` entry (weights and the state
of each layer's seed generator, so Dropout draws the same masks after a
restart) and every ``optimizer.variables`` entry (iteration count, which
drives learning-rate schedules, and the moments of Adam and friends).
Variables are matched by position and checked by shape: layer names differ
between processes that build several models, positions do not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from candle_restart.ckpt.errors import CorruptCheckpointError

_MANIFEST = "__manifest__"


def _optimizer_variables(model: Any) -> list[Any]:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    return list(optimizer.variables)


def save_state(model: Any, path: Path) -> None:
    """Write the model's and optimizer's variables to ``path`` (a new ``.npz`` file)."""
    groups = {"model": list(model.variables), "optimizer": _optimizer_variables(model)}
    arrays: dict[str, np.ndarray] = {}
    manifest: dict[str, list[dict[str, Any]]] = {}
    for group, variables in groups.items():
        manifest[group] = []
        for i, variable in enumerate(variables):
            value = np.asarray(variable.numpy())
            arrays[f"{group}/{i}"] = value
            manifest[group].append(
                {"path": variable.path, "shape": list(value.shape), "dtype": str(value.dtype)}
            )
    arrays[_MANIFEST] = np.array(json.dumps(manifest))
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def load_state(model: Any, path: Path) -> None:
    """Assign the variables saved in ``path`` to ``model`` and its optimizer.

    Raises CorruptCheckpointError if the file does not fit the model (a
    different architecture or optimizer) before assigning anything.
    """
    groups = {"model": list(model.variables), "optimizer": _optimizer_variables(model)}
    with np.load(path, allow_pickle=False) as data:
        manifest = json.loads(str(data[_MANIFEST]))
        for group, variables in groups.items():
            saved = manifest.get(group, [])
            if len(saved) != len(variables):
                raise CorruptCheckpointError(
                    str(path), group, f"holds {len(saved)} variables, the model has {len(variables)}"
                )
            for i, variable in enumerate(variables):
                if list(saved[i]["shape"]) != list(variable.shape):
                    raise CorruptCheckpointError(
                        str(path),
                        group,
                        f"variable {i} ({saved[i]['path']}) has shape {saved[i]['shape']}, "
                        f"the model's {variable.path} has {list(variable.shape)}",
                    )
        for group, variables in groups.items():
            for i, variable in enumerate(variables):
                variable.assign(data[f"{group}/{i}"])
