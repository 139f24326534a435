"""Callback state values through ``callbacks.json``'s JSON: types and bits come back (NumPy only)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from candle_restart.keras.cbvalues import Unencodable, decode, encode


def _round_trip(value: object) -> object:
    arrays: dict[str, np.ndarray] = {}
    text = json.dumps(encode(value, arrays, "0"), allow_nan=False)  # strict JSON
    return decode(json.loads(text), arrays)


def test_types_and_bits_come_back() -> None:
    value = {
        "f": 0.1 + 0.2,
        "inf": -math.inf,
        "n": None,
        "flag": True,
        "i": 7,
        "f32": np.float32(1.1),
        "f64": np.float64(2.5),
        "i64": np.int64(3),
        "nan32": np.float32("nan"),
        "w": [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(2)],
        "t": (1, "a"),
    }
    back = _round_trip(value)
    assert isinstance(back, dict)
    assert back["f"] == value["f"] and back["inf"] == -math.inf and back["n"] is None and back["flag"] is True
    assert type(back["f32"]) is np.float32 and back["f32"].tobytes() == value["f32"].tobytes()
    assert type(back["f64"]) is np.float64 and type(back["i64"]) is np.int64 and back["i64"] == 3
    assert type(back["nan32"]) is np.float32 and math.isnan(back["nan32"])
    assert [a.tobytes() for a in back["w"]] == [a.tobytes() for a in value["w"]]
    assert back["t"] == [1, "a"]  # a tuple comes back as a list


@pytest.mark.parametrize("value", [{"$x": 1}, {1: 2}, object(), np.array([object()]), {"a": {1, 2}}])
def test_what_json_cannot_hold_is_refused(value: object) -> None:
    with pytest.raises(Unencodable):
        encode(value, {}, "0")
