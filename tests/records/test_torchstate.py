"""``train_state.json``'s trees: Python state dicts to JSON and back, nothing pickled."""

from __future__ import annotations

import math

import pytest

from candle_restart.errors import CorruptCheckpointError
from candle_restart.records.jsontypes import JsonObject
from candle_restart.records.torchstate import Leaf, TorchState, TreeError, decode_tree, encode_tree


class Blob:
    """Stands for a tensor: what the backend's leaf stores by name."""

    def __init__(self, n: int) -> None:
        self.n = n


def _leaf(stored: dict[str, Blob]) -> Leaf:
    def leaf(value: object, path: str) -> JsonObject | None:
        if isinstance(value, Blob):
            stored[path] = value
            return {"$tensor": path}
        return None

    return leaf


def test_an_optimizer_like_state_comes_back_with_its_types() -> None:
    state = {
        "state": {0: {"step": Blob(1), "exp_avg": Blob(2)}, 1: {"step": Blob(3)}},
        "param_groups": [
            {"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "fused": None, "amsgrad": False}
        ],
        "$odd": math.inf,
        "end_step": 5.0,
        "nan": math.nan,
    }
    stored: dict[str, Blob] = {}
    tree = encode_tree(state, _leaf(stored), "optimizer")
    back = decode_tree(tree, lambda tag, name, path: stored[name], "optimizer")
    assert isinstance(back, dict)
    assert back["state"][0]["exp_avg"] is stored["optimizer/state/0/exp_avg"]
    assert back["param_groups"][0]["betas"] == (0.9, 0.999) and isinstance(
        back["param_groups"][0]["betas"], tuple
    )
    assert list(back["state"]) == [0, 1] and back["$odd"] == math.inf and math.isnan(back["nan"])
    assert isinstance(back["end_step"], float) and back["end_step"] == 5.0
    record = TorchState("model.h5", {"optimizer": tree}, rng=None)
    again = TorchState.from_bytes(record.to_bytes(), "train_state.json")
    assert again.parts == record.parts and again.tensor_names() == set(stored)


def test_a_function_is_refused_naming_its_path() -> None:
    with pytest.raises(
        TreeError, match=r"^sched/lr_lambdas/0: a builtins.function cannot be saved without pickle$"
    ):
        encode_tree({"lr_lambdas": [lambda e: e]}, lambda v, p: None, "sched")


@pytest.mark.parametrize(
    "text, key",
    [
        (b'{"schema_version": 1, "tensors_file": "../x", "parts": {}}', "tensors_file"),
        (b'{"schema_version": 0, "tensors_file": "model.h5", "parts": {}}', "schema_version"),
        (b'{"schema_version": 1, "tensors_file": "model.h5", "parts": {"m": {"$tensor": 3}}}', "parts/m"),
        (b'{"schema_version": 1, "tensors_file": "model.h5", "parts": {"m": {"$eval": "x"}}}', "parts/m"),
        (b'{"schema_version": 1, "tensors_file": "model.h5", "parts": {"m": {"$dict": [[1]]}}}', "parts/m"),
        (b"[1]", None),
    ],
)
def test_a_malformed_record_is_one_line_naming_the_key(text: bytes, key: str | None) -> None:
    with pytest.raises(CorruptCheckpointError) as caught:
        TorchState.from_bytes(text, "train_state.json")
    assert caught.value.where == "train_state.json" and caught.value.key == key
