"""The manifest inside a Keras checkpoint's ``train_state.npz`` (its ``__manifest__`` member).

Shape (one JSON object): per group (``model``, ``optimizer``, ``metrics`` in a mid-epoch
checkpoint, and ``rng``: the process-wide random generators, ``path`` naming each) a list of
entries ``{"path", "shape", "dtype"}`` in variable order, an entry with
``"at"`` naming the dataset inside the model file's HDF5 weights that holds its value (each
tensor is written once); ``"model_file": {"name", "member"}`` names that file beside the state
file and, for a ``.keras`` zip, the member holding the weights (null for a ``.weights.h5``).
Checkpoints written before each tensor was written once have no ``at`` and no ``model_file``:
every value is an array of the ``.npz`` (``<group>/<index>``).

`TrainManifest` is its one reader and writer (`TrainManifest.to_text`, `TrainManifest.from_text`;
its entries are `VarEntry` records); a manifest that does not have this shape is a
`ManifestShapeError` (a ``ValueError`` too) naming the key (``model.0.shape``), which the Keras
reader turns into a `CorruptCheckpointError` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonError, loads
from candle_restart.records.jsontypes import JsonObject, JsonValue, is_int

MANIFEST_MEMBER = "__manifest__"
GROUPS = ("model", "optimizer", "metrics", "rng")


class ManifestShapeError(CkptError, ValueError):
    """The manifest is not one this version reads (one line naming the key)."""


@dataclass(frozen=True)
class VarEntry:
    """One variable: its path, shape and dtype, and ``at``: the dataset of the model file's HDF5
    weights holding its value (None: an array of the ``.npz``, ``<group>/<index>``)."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    at: str | None = None

    def to_json(self) -> JsonObject:
        """The entry's object, keys in the order every version wrote them."""
        record: JsonObject = {"path": self.path, "shape": list(self.shape), "dtype": self.dtype}
        if self.at is not None:
            record["at"] = self.at
        return record

    @classmethod
    def from_json(cls, data: object, source: str, key: tuple[str, ...]) -> VarEntry:
        check = Fields(source, ManifestShapeError)
        data = check.obj(data, key)
        shape = data.get("shape")
        sizes = [n for n in shape if is_int(n) and isinstance(n, int) and n >= 0] if isinstance(shape, list) else None
        if sizes is None or not isinstance(shape, list) or len(sizes) != len(shape):
            raise check.expected((*key, "shape"), "a list of sizes", shape)
        at = data.get("at")
        return cls(
            check.string(data.get("path"), (*key, "path")),
            tuple(sizes),
            check.string(data.get("dtype"), (*key, "dtype")),
            None if "at" not in data else check.string(at, (*key, "at")),
        )


def entry(path: str, shape: Sequence[int], dtype: str, at: str | None = None) -> VarEntry:
    """One variable's entry."""
    return VarEntry(path, tuple(int(n) for n in shape), dtype, at)


@dataclass(frozen=True)
class TrainManifest:
    """The manifest: each group's entries in variable order, and the model file (its name beside the
    state file, and the zip member holding the weights or None); None in a checkpoint written before
    each tensor was written once."""

    groups: Mapping[str, Sequence[VarEntry]]
    model_file: tuple[str, str | None] | None = None

    def entries(self, group: str) -> list[VarEntry]:
        """The entries of ``group`` ([] when the manifest has none)."""
        return list(self.groups.get(group, ()))

    def to_json(self) -> JsonObject:
        """The manifest's object: the groups in the order given, then ``model_file`` if any."""
        manifest: JsonObject = {group: [e.to_json() for e in entries] for group, entries in self.groups.items()}
        if self.model_file is not None:
            manifest["model_file"] = {"name": self.model_file[0], "member": self.model_file[1]}
        return manifest

    def to_text(self) -> str:
        """The text of the ``__manifest__`` member."""
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: object, source: str = MANIFEST_MEMBER) -> TrainManifest:
        """The manifest of a parsed ``__manifest__``, checked against the shape above; `ManifestShapeError` if not.
        Keys it does not know are ignored."""
        check = Fields(source, ManifestShapeError)
        data = check.obj(data)
        groups: dict[str, list[VarEntry]] = {}
        for group in GROUPS:
            if group in data:
                items = data[group]
                if not isinstance(items, list):
                    raise check.expected(group, "a list of variable entries", items)
                groups[group] = [VarEntry.from_json(item, source, (group, str(i))) for i, item in enumerate(items)]
        return cls(groups, None if "model_file" not in data else _model_file(check, data["model_file"]))

    @classmethod
    def from_text(cls, text: str, source: str = MANIFEST_MEMBER) -> TrainManifest:
        """The manifest in the text of a ``__manifest__`` member; `ManifestShapeError` if it is not one."""
        try:
            data = loads(text)
        except JsonError as exc:
            raise ManifestShapeError(source, None, f"is not JSON: {exc}") from None
        return cls.from_json(data, source)


def _model_file(check: Fields, ref: JsonValue) -> tuple[str, str | None]:
    """``model_file``: a plain file name beside the state file, and the zip member or None."""
    if not isinstance(ref, dict):
        raise check.expected("model_file", "{name, member} naming the model file", ref)
    name = ref.get("name")
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise check.expected(("model_file", "name"), "a file name beside the state file", name)
    return name, check.opt_string(ref.get("member"), ("model_file", "member"))
