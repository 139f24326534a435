"""The manifest of ``train_state.npz``: one writer, one reader, the old shape still read."""

from __future__ import annotations

import json

import pytest

from candle_restart.records.trainstate import ManifestShapeError, TrainManifest, VarEntry, entry


def test_the_text_is_what_earlier_versions_wrote_and_reads_back() -> None:
    groups = {
        "model": [entry("dense/kernel", (3, 2), "float32", "layers/dense/vars/0"), entry("seed", (2,), "uint32")],
        "optimizer": [entry("adam/iteration", (), "int64", "optimizer/vars/0")],
    }
    text = TrainManifest(groups, ("model.keras", "model.weights.h5")).to_text()
    # The hand-built dict of the previous writer, dumped with json's defaults.
    earlier = {
        "model": [
            {"path": "dense/kernel", "shape": [3, 2], "dtype": "float32", "at": "layers/dense/vars/0"},
            {"path": "seed", "shape": [2], "dtype": "uint32"},
        ],
        "optimizer": [{"path": "adam/iteration", "shape": [], "dtype": "int64", "at": "optimizer/vars/0"}],
        "model_file": {"name": "model.keras", "member": "model.weights.h5"},
    }
    assert text == json.dumps(earlier)
    manifest = TrainManifest.from_text(text)
    assert manifest.to_json() == earlier and manifest.model_file == ("model.keras", "model.weights.h5")
    assert manifest.entries("model")[0] == VarEntry("dense/kernel", (3, 2), "float32", "layers/dense/vars/0")


def test_a_two_copy_manifest_without_at_or_model_file_reads() -> None:
    old = json.dumps({"model": [{"path": "w", "shape": [4], "dtype": "float32"}], "optimizer": []})
    manifest = TrainManifest.from_text(old)
    assert manifest.entries("model") == [VarEntry("w", (4,), "float32")] and manifest.model_file is None
    assert manifest.entries("rng") == [] and manifest.to_json() == json.loads(old)


@pytest.mark.parametrize(
    "text, key",
    [
        ("[1]", "__manifest__: must be a JSON object, got list"),
        ("{", "__manifest__: is not JSON"),
        ('{"model": {"path": "w"}}', "__manifest__: model: must be a list of variable entries"),
        ('{"model": [{"path": "w", "shape": [-1], "dtype": "f"}]}', "__manifest__: model.0.shape: must be a list of sizes"),
        ('{"optimizer": [{"path": 1, "shape": [], "dtype": "f"}]}', "__manifest__: optimizer.0.path: must be a string"),
        ('{"model": [{"path": "w", "shape": [], "dtype": "f", "at": 3}]}', "__manifest__: model.0.at: must be a string"),
        (
            '{"model": [], "model_file": {"name": "../x.keras", "member": null}}',
            "__manifest__: model_file.name: must be a file name beside the state file",
        ),
    ],
)
def test_a_forged_manifest_is_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(ManifestShapeError) as refused:
        TrainManifest.from_text(text)
    assert str(refused.value).startswith(key) and "\n" not in str(refused.value)
