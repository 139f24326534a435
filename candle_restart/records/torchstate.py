"""``train_state.json``: a PyTorch checkpoint's state apart from tensor bytes (`TorchState`).

A PyTorch checkpoint is two files: ``model.h5`` holds every tensor once (the safetensors layout of
`candle_restart.records.tensorfile`), and this record holds everything else, each tensor replaced
by a reference to its name there:

* ``schema_version`` (1), ``tensors_file`` (``model.h5``), ``torch_version`` (the writer's);
* ``parts``: per object given to ``set_model`` (``model``, ``optimizer``, ``scheduler``, a list's
  items as ``scheduler/0``, ...), its ``state_dict()`` as a tree (below);
* ``rng``: torch's CPU and CUDA generators, NumPy's and Python's, and named ``torch.Generator``
  objects, as a tree; ``epoch_rng``: the same as the interrupted epoch's batches began (a
  mid-epoch checkpoint whose loop iterated through the checkpoint object), else null;
* ``not_saved``: one line per object given to ``set_model`` that has no state to save.

A tree is JSON, with these tagged objects (a one-key object whose key starts with ``$``):
``{"$tensor": NAME}`` and ``{"$ndarray": NAME}`` (a torch tensor or NumPy array stored in
the tensors file), ``{"$ndscalar": NAME}`` (a NumPy scalar, stored as a 0-d array),
``{"$tuple": [...]}``, ``{"$dict": [[key, value], ...]}`` (a dict whose keys are not all
strings, as an optimizer's ``state`` by parameter index, or start with ``$``), and
``{"$float": "nan"|"inf"|"-inf"}``; the file itself is strict JSON.  `encode_tree` builds a tree
from Python values, asking ``leaf`` for the tensors it stores; anything else (a function, an
arbitrary object) is a `TreeError` naming its path: nothing is ever pickled.  `decode_tree`
is the reverse, checking the shape as it goes.

`TorchState.read` (`from_bytes`, `from_json`) is the one reader; a file of another shape is a `CorruptCheckpointError`
naming the file, the key and the problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from candle_restart.errors import CorruptCheckpointError
from candle_restart.records.jsonio import JsonError, loads, utf8
from candle_restart.records.jsontypes import JsonObject, JsonValue, is_int

STATE_FILE = "train_state.json"
SCHEMA_VERSION = 1
LEAF_TAGS = ("$tensor", "$ndarray", "$ndscalar")
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# A leaf the backend stores: given the value and its path, its tagged object, or None (not a leaf).
Leaf = Callable[[object, str], "JsonObject | None"]
# The reverse: given the tag, the name and the path, the value.
Load = Callable[[str, str, str], object]


class TreeError(ValueError):
    """A value that cannot be written as a tree, or a tree of the wrong shape (names the path)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


def encode_tree(value: object, leaf: Leaf, path: str) -> JsonValue:
    """``value`` as a tree (see the module docstring); `TreeError` for what cannot be stored."""
    tagged = leaf(value, path)
    if tagged is not None:
        return tagged
    if value is None or isinstance(value, (bool, str)) or is_int(value):
        return value  # type: ignore[return-value]
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, list):
        return [encode_tree(v, leaf, f"{path}/{i}") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"$tuple": [encode_tree(v, leaf, f"{path}/{i}") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode_tree(v, leaf, f"{path}/{k}") for k, v in value.items()}
        return {
            "$dict": [
                [encode_tree(k, leaf, f"{path}/{k}#key"), encode_tree(v, leaf, f"{path}/{k}")]
                for k, v in value.items()
            ]
        }
    raise TreeError(
        path, f"a {type(value).__module__}.{type(value).__qualname__} cannot be saved without pickle"
    )


def decode_tree(tree: JsonValue, load: Load, path: str) -> object:
    """The Python value of ``tree``; `TreeError` naming the path where its shape is wrong."""
    if tree is None or isinstance(tree, (bool, str, int, float)):
        return tree
    if isinstance(tree, list):
        return [decode_tree(v, load, f"{path}/{i}") for i, v in enumerate(tree)]
    if len(tree) == 1:
        ((tag, inner),) = tree.items()
        if tag in LEAF_TAGS:
            if not isinstance(inner, str):
                raise TreeError(path, f"{tag} must name a tensor, got {inner!r}")
            return load(tag, inner, path)
        if tag == "$tuple":
            if not isinstance(inner, list):
                raise TreeError(path, "$tuple must be a list")
            return tuple(decode_tree(v, load, f"{path}/{i}") for i, v in enumerate(inner))
        if tag == "$float":
            if inner not in _FLOATS:
                raise TreeError(path, f"$float must be one of {sorted(_FLOATS)}, got {inner!r}")
            return _FLOATS[str(inner)]
        if tag == "$dict":
            return _decode_dict(inner, load, path)
    if any(k.startswith("$") for k in tree):
        raise TreeError(path, f"unknown tagged value {sorted(tree)}")
    return {k: decode_tree(v, load, f"{path}/{k}") for k, v in tree.items()}


def _decode_dict(items: JsonValue, load: Load, path: str) -> dict[object, object]:
    if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 for p in items):
        raise TreeError(path, "$dict must be a list of [key, value] pairs")
    out: dict[object, object] = {}
    for pair in items:
        key = decode_tree(pair[0], load, f"{path}#key")  # type: ignore[index]
        try:
            hash(key)
        except TypeError:
            raise TreeError(path, f"a $dict key must be hashable, got {key!r}") from None
        out[key] = decode_tree(pair[1], load, f"{path}/{key}")  # type: ignore[index]
    return out


def tensor_names(tree: JsonValue, path: str = "") -> list[str]:
    """The names of the tensors ``tree`` refers to (checking its shape on the way)."""
    names: list[str] = []

    def note(_tag: str, name: str, _path: str) -> object:
        names.append(name)
        return None

    decode_tree(tree, note, path)
    return names


@dataclass(frozen=True)
class TorchState:
    """One ``train_state.json`` (see the module docstring)."""

    tensors_file: str
    parts: Mapping[str, JsonValue]
    rng: JsonValue
    epoch_rng: JsonValue = None
    torch_version: str | None = None
    not_saved: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, JsonValue] = field(default_factory=dict)  # keys a newer version wrote

    def to_json(self) -> JsonObject:
        """The file's object."""
        return {
            "schema_version": self.schema_version,
            "tensors_file": self.tensors_file,
            "torch_version": self.torch_version,
            "parts": dict(self.parts),
            "rng": self.rng,
            "epoch_rng": self.epoch_rng,
            "not_saved": list(self.not_saved),
        }

    def to_bytes(self) -> bytes:
        """The file's content: strict JSON, ``indent=1``, a trailing newline."""
        return (json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n").encode()

    def tensor_names(self) -> set[str]:
        """Every tensor name the record refers to."""
        names = set(tensor_names(self.rng, "rng")) | set(tensor_names(self.epoch_rng, "epoch_rng"))
        for part, tree in self.parts.items():
            names.update(tensor_names(tree, f"parts/{part}"))
        return names

    @classmethod
    def read(cls, path: Path) -> TorchState:
        """The record in ``path`` (``OSError`` when it cannot be read; see `from_bytes`)."""
        return cls.from_bytes(path.read_bytes(), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> TorchState:
        """Read a ``train_state.json``'s bytes; `CorruptCheckpointError` (file, key, problem) if malformed."""
        try:
            raw = loads(utf8(data))
        except (JsonError, ValueError) as exc:
            raise CorruptCheckpointError(where, None, f"is not JSON: {exc}") from None
        return cls.from_json(raw, where)

    @classmethod
    def from_json(cls, raw: object, where: str) -> TorchState:
        """The record of a parsed ``train_state.json``; `CorruptCheckpointError` (file, key, problem) if malformed."""
        if not isinstance(raw, dict):
            raise CorruptCheckpointError(where, None, "must hold a JSON object")
        version, tensors_file = raw.get("schema_version"), raw.get("tensors_file")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CorruptCheckpointError(
                where, "schema_version", f"must be a positive integer, got {version!r}"
            )
        if (
            not isinstance(tensors_file, str)
            or not tensors_file
            or "/" in tensors_file
            or tensors_file in (".", "..")
        ):
            raise CorruptCheckpointError(where, "tensors_file", f"must be a file name, got {tensors_file!r}")
        parts, torch_version, not_saved = raw.get("parts"), raw.get("torch_version"), raw.get("not_saved", [])
        if not isinstance(parts, dict):
            raise CorruptCheckpointError(where, "parts", "must be an object")
        if torch_version is not None and not isinstance(torch_version, str):
            raise CorruptCheckpointError(where, "torch_version", "must be a string")
        if not isinstance(not_saved, list) or not all(isinstance(s, str) for s in not_saved):
            raise CorruptCheckpointError(where, "not_saved", "must be a list of strings")
        known = {"schema_version", "tensors_file", "torch_version", "parts", "rng", "epoch_rng", "not_saved"}
        state = cls(
            tensors_file=tensors_file,
            parts=parts,
            rng=raw.get("rng"),
            epoch_rng=raw.get("epoch_rng"),
            torch_version=torch_version,
            not_saved=tuple(str(s) for s in not_saved),
            schema_version=version,
            extra={k: v for k, v in raw.items() if k not in known},
        )
        try:
            state.tensor_names()  # every tree's shape
        except TreeError as exc:
            raise CorruptCheckpointError(where, exc.path, exc.problem) from None
        return state
