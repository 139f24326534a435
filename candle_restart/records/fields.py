"""The one field check of the records: a parsed value of the right JSON type, or one line saying why not.

Every record's ``from_json`` checks its keys through a `Fields` bound to the file (``source``)
and to the record's error class (a `candle_restart.errors.CkptError`), so every reader fails
the same way: ``<file>: <key>: must be <what>, got <value>``, one line (the value cut to fit).
A nested key is dotted (``metric.best``, ``slurm.nodes``).  Each check returns the value typed,
so a reader never indexes a dict it has not checked.

The ``opt_`` checks take None (a missing key) and give None; each record says which of its
keys are optional and what a missing one means (tolerant reading of older files).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from candle_restart.errors import CkptError
from candle_restart.records.jsontypes import JsonObject, is_int, is_number

Key = str | tuple[str, ...] | None  # a key, or the path of a nested one
Choice = TypeVar("Choice", bound=str)
MAX_PROBLEM = 300  # characters of a problem, the value included


class Fields:
    """Checks of one file's values; each failure is ``error(source, dotted key, problem)``."""

    def __init__(self, source: object, error: Callable[[str, str | None, str], CkptError]) -> None:
        self.source, self.error = str(source), error

    def fail(self, key: Key, problem: str) -> CkptError:
        """The record's error for ``key`` (None: the file as a whole), in one line."""
        name = ".".join(key) if isinstance(key, tuple) else key
        return self.error(self.source, name or None, " ".join(problem.split())[:MAX_PROBLEM])

    def expected(self, key: Key, what: str, value: object) -> CkptError:
        """``<key>: must be <what>, got <value>``."""
        return self.fail(key, f"must be {what}, got {value!r}")

    def obj(self, value: object, key: Key = None) -> JsonObject:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a JSON object, got {type(value).__name__}")
        return value

    def opt_obj(self, value: object, key: Key) -> JsonObject | None:
        if value is None or isinstance(value, dict):
            return value
        raise self.expected(key, "an object or null", value)

    def string(self, value: object, key: Key, nonempty: bool = False) -> str:
        if isinstance(value, str) and (value or not nonempty):
            return value
        raise self.expected(key, "a non-empty string" if nonempty else "a string", value)

    def opt_string(self, value: object, key: Key) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise self.expected(key, "a string or null", value)

    def integer(self, value: object, key: Key, minimum: int | None = None, maximum: int | None = None) -> int:
        """An integer (not a bool) within ``minimum``..``maximum`` where given."""
        if is_int(value) and isinstance(value, int):
            if (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
                return value
            if maximum is not None:
                raise self.expected(key, f"an integer from {minimum} to {maximum}", value)
        raise self.expected(key, "an integer" if minimum is None else f"an integer >= {minimum}", value)

    def opt_integer(self, value: object, key: Key, minimum: int | None = None) -> int | None:
        if value is None:
            return None
        if is_int(value) and isinstance(value, int) and (minimum is None or value >= minimum):
            return value
        raise self.expected(key, "an integer or null" if minimum is None else f"an integer >= {minimum} or null", value)

    def number(self, value: object, key: Key) -> float:
        if is_number(value) and isinstance(value, (int, float)):
            return float(value)
        raise self.expected(key, "a number", value)

    def opt_number(self, value: object, key: Key) -> float | None:
        if value is None:
            return None
        if is_number(value) and isinstance(value, (int, float)):
            return float(value)
        raise self.expected(key, "a number or null", value)

    def flag(self, value: object, key: Key) -> bool:
        if isinstance(value, bool):
            return value
        raise self.expected(key, "true or false", value)

    def opt_flag(self, value: object, key: Key) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise self.expected(key, "true, false or null", value)

    def strings(self, value: object, key: Key) -> list[str]:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        raise self.expected(key, "a list of strings", value)

    def opt_strings(self, value: object, key: Key) -> list[str] | None:
        return None if value is None else self.strings(value, key)

    def choice(self, value: object, key: Key, choices: Collection[Choice]) -> Choice:
        """``value`` when it is one of ``choices`` (typed as they are)."""
        for choice in choices:
            if value == choice and isinstance(value, str):
                return choice
        if not isinstance(value, str):
            raise self.fail(key, "missing or not a string" if value is None else f"must be a string, got {value!r}")
        raise self.fail(key, f"unknown value {value!r} (expected one of {', '.join(choices)})")
