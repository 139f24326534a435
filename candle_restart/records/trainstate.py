"""The manifest inside a Keras checkpoint's ``train_state.npz`` (its ``__manifest__`` member).

Shape (one JSON object): per group (``model``, ``optimizer``, ``metrics`` in a mid-epoch
checkpoint, and ``rng``: the process-wide random generators, ``path`` naming each) a list of
entries ``{"path", "shape", "dtype"}`` in variable order, an entry with
``"at"`` naming the dataset inside the model file's HDF5 weights that holds its value (each
tensor is written once); ``"model_file": {"name", "member"}`` names that file beside the state
file and, for a ``.keras`` zip, the member holding the weights (null for a ``.weights.h5``).
Checkpoints written before each tensor was written once have no ``at`` and no ``model_file``:
every value is an array of the ``.npz`` (``<group>/<index>``).

`encode_manifest` is the only writer and `decode_manifest` the only reader; a manifest that
does not have this shape is a `ManifestShapeError` (a ``ValueError``) naming the key, which the
Keras reader turns into a `CorruptCheckpointError` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from candle_restart.records.jsonio import JsonError, loads
from candle_restart.records.jsontypes import JsonObject, JsonValue, is_int

MANIFEST_MEMBER = "__manifest__"
GROUPS = ("model", "optimizer", "metrics", "rng")


class ManifestShapeError(ValueError):
    """The manifest is not one this version reads (the message names the key)."""


def entry(path: str, shape: Sequence[int], dtype: str, at: str | None = None) -> JsonObject:
    """One variable's entry, keys in the order every version wrote them."""
    record: JsonObject = {"path": path, "shape": [int(n) for n in shape], "dtype": dtype}
    if at is not None:
        record["at"] = at
    return record


def encode_manifest(groups: Mapping[str, Sequence[JsonObject]], model_file: tuple[str, str | None] | None) -> str:
    """The manifest's text: ``groups`` in the order given, then ``model_file`` if any."""
    manifest: JsonObject = {group: list(entries) for group, entries in groups.items()}
    if model_file is not None:
        manifest["model_file"] = {"name": model_file[0], "member": model_file[1]}
    return json.dumps(manifest)


def decode_manifest(text: str) -> JsonObject:
    """The manifest in ``text``, checked against the shape above; `ManifestShapeError` if not."""
    try:
        manifest = loads(text)
    except JsonError as exc:
        raise ManifestShapeError(f"the manifest is not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestShapeError("the manifest is not an object")
    for group in GROUPS:
        if group in manifest:
            _check_entries(group, manifest[group])
    if "model_file" in manifest:
        model_file(manifest)
    return manifest


def _check_entries(group: str, entries: JsonValue) -> None:
    if not isinstance(entries, list):
        raise ManifestShapeError(f"{group}: must be a list of variable entries")
    for i, item in enumerate(entries):
        if not isinstance(item, dict):
            raise ManifestShapeError(f"{group}/{i}: must be an object")
        shape = item.get("shape")
        if not isinstance(item.get("path"), str) or not isinstance(item.get("dtype"), str):
            raise ManifestShapeError(f"{group}/{i}: path and dtype must be strings")
        if not isinstance(shape, list) or not all(is_int(n) and n >= 0 for n in shape):  # type: ignore[operator]
            raise ManifestShapeError(f"{group}/{i}: shape must be a list of sizes, got {shape!r}")
        if "at" in item and not isinstance(item["at"], str):
            raise ManifestShapeError(f"{group}/{i}: at must name a dataset, got {item['at']!r}")


def model_file(manifest: Mapping[str, JsonValue]) -> tuple[str, str | None]:
    """The manifest's ``model_file``: a plain file name beside the state file, and the zip member or None."""
    ref = manifest.get("model_file")
    if not isinstance(ref, dict):
        raise ManifestShapeError(f"model_file must name the model file, got {ref!r}")
    name, member = ref.get("name"), ref.get("member")
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ManifestShapeError(f"model_file must be a file name beside the state file, got {name!r}")
    if member is not None and not isinstance(member, str):
        raise ManifestShapeError(f"model_file member must be a name or null, got {member!r}")
    return name, member
