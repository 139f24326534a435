"""JSON values read back by a test, narrowed to the shape the test expects.

Each helper asserts the shape it returns (a wrong shape fails the test at the read, showing the
value), so a test reads a record's `JsonValue` without a cast."""

from __future__ import annotations

from typing import Any


def obj(value: object) -> dict[str, Any]:
    """``value``, which must be a JSON object."""
    assert isinstance(value, dict), f"not a JSON object: {value!r}"
    return value


def text(value: object) -> str:
    """``value``, which must be a string."""
    assert isinstance(value, str), f"not a string: {value!r}"
    return value


def integer(value: object) -> int:
    """``value``, which must be an integer (not a bool)."""
    assert isinstance(value, int) and not isinstance(value, bool), f"not an integer: {value!r}"
    return value
