"""The manifest of ``train_state.npz``: one writer, one reader, the old shape still read."""

from __future__ import annotations

import json

import pytest

from candle_restart.records.trainstate import (
    ManifestShapeError,
    decode_manifest,
    encode_manifest,
    entry,
    model_file,
)


def test_the_text_is_what_earlier_versions_wrote_and_reads_back() -> None:
    groups = {
        "model": [entry("dense/kernel", (3, 2), "float32", "layers/dense/vars/0"), entry("seed", (2,), "uint32")],
        "optimizer": [entry("adam/iteration", (), "int64", "optimizer/vars/0")],
    }
    text = encode_manifest(groups, ("model.keras", "model.weights.h5"))
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
    manifest = decode_manifest(text)
    assert manifest == earlier and model_file(manifest) == ("model.keras", "model.weights.h5")


def test_a_two_copy_manifest_without_at_or_model_file_reads() -> None:
    old = json.dumps({"model": [{"path": "w", "shape": [4], "dtype": "float32"}], "optimizer": []})
    assert decode_manifest(old)["model"] == [{"path": "w", "shape": [4], "dtype": "float32"}]


@pytest.mark.parametrize(
    "text, key",
    [
        ("[1]", "not an object"),
        ("{", "not JSON"),
        ('{"model": {"path": "w"}}', "model: must be a list"),
        ('{"model": [{"path": "w", "shape": [-1], "dtype": "f"}]}', "model/0: shape"),
        ('{"optimizer": [{"path": 1, "shape": [], "dtype": "f"}]}', "optimizer/0: path and dtype"),
        ('{"model": [{"path": "w", "shape": [], "dtype": "f", "at": 3}]}', "model/0: at"),
        ('{"model": [], "model_file": {"name": "../x.keras", "member": null}}', "model_file must be a file name"),
    ],
)
def test_a_forged_manifest_is_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(ManifestShapeError, match=key.replace("[", r"\[")):
        decode_manifest(text)
