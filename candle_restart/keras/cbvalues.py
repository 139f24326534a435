"""Callback state values to and from ``callbacks.json``'s JSON, bits and types kept.

`encode` turns what a callback holds (Python scalars, lists, tuples, string-keyed dicts, NumPy
scalars and arrays) into the record's JSON (`candle_restart.records.cbstate`): a non-finite
float and a NumPy scalar become tagged objects, an array goes into the arrays file and is
referred to by name.  `decode` is its inverse: a float comes back with the same bits, a NumPy
scalar with its dtype, a tuple as a list.  Anything else raises `Unencodable`.
"""

from __future__ import annotations

import math

import numpy as np

from candle_restart.records.cbstate import ARRAY_TAG, FLOAT_TAG, NON_FINITE, NUMPY_TAG
from candle_restart.records.jsontypes import JsonValue

Value = object  # what a callback holds: JSON-able Python, NumPy scalars and arrays


class Unencodable(TypeError):
    """A value ``callbacks.json`` cannot hold (the message names where in the state it is)."""


def _float(value: float) -> JsonValue:
    if math.isfinite(value):
        return value
    return {FLOAT_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def encode(value: Value, arrays: dict[str, np.ndarray], where: str) -> JsonValue:
    """``value`` as the record's JSON; arrays are added to ``arrays`` under names starting with ``where``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        number = value.item()
        if isinstance(number, float) and not math.isfinite(number):
            tagged = _float(number)
            return {NUMPY_TAG: value.dtype.name, "value": tagged[FLOAT_TAG]}  # type: ignore[index,call-overload]
        return {NUMPY_TAG: value.dtype.name, "value": number}
    if isinstance(value, int):  # after NumPy's scalars: np.float64 is a float, np.int_ may be an int
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise Unencodable(f"{where}: an array of Python objects")
        name = f"{where}/{len(arrays)}"
        arrays[name] = np.ascontiguousarray(value)
        return {ARRAY_TAG: name}
    if isinstance(value, (list, tuple)):
        return [encode(v, arrays, where) for v in value]
    if isinstance(value, dict):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$"):
                raise Unencodable(f"{where}: dict key {key!r} (keys are strings not starting with $)")
            out[key] = encode(item, arrays, where)
        return out
    raise Unencodable(f"{where}: a {type(value).__name__}")


def decode(value: JsonValue, arrays: dict[str, np.ndarray]) -> Value:
    """The value `encode` was given (``arrays``: the arrays file's members by name)."""
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if isinstance(value, dict):
        if FLOAT_TAG in value:
            return float(str(value[FLOAT_TAG]))
        if NUMPY_TAG in value:
            number = value["value"]
            return np.dtype(str(value[NUMPY_TAG])).type(float(number) if number in NON_FINITE else number)
        if ARRAY_TAG in value:
            return arrays[str(value[ARRAY_TAG])]
        return {k: decode(v, arrays) for k, v in value.items()}
    return value
