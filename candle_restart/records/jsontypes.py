"""The types of JSON data as the readers of this package hand it out.

`JsonValue` is what ``json.loads`` can return; `JsonObject` is a JSON object.  Records keep
values whose shape is free (a task's gParameters, what a training returned, keys a newer
version wrote) with these types instead of ``Any``, so a reader has to check before it uses one.
"""

from __future__ import annotations

from typing import TypeAlias, Union

JsonValue: TypeAlias = Union[bool, int, float, str, "list[JsonValue]", "dict[str, JsonValue]", None]
JsonObject: TypeAlias = "dict[str, JsonValue]"


def is_int(value: object) -> bool:
    """True for a JSON integer (``True``/``False`` are not integers here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """True for a JSON number (int or float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
