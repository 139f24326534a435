"""Reading one gParameters value as the type its key wants, with a one-line error naming the key.

`Reader` is what `candle_restart.ckpt.params.parse_params` and ``typed_value`` read with:
integers of at most `MAX_INT_DIGITS` digits (a float or a string with an integral value, 3.0 or
"3.0", is that integer), choices in any case ("AUTO" is "auto"), finite numbers (but for a best
metric, where CANDLE's infinity means "none yet"), CANDLE's spellings of booleans (`str2bool`),
and a quoted value in an error shortened to `SHOWN_CHARS`.
"""

from __future__ import annotations

import argparse
import decimal
import math
import numbers
from collections.abc import Callable, Mapping
from typing import SupportsFloat, TypeVar

from candle_restart.errors import ParamError

_TRUE = ("true", "t", "yes", "y", "1", "on")
_FALSE = ("false", "f", "no", "n", "0", "off")
MAX_INT_DIGITS = 18  # an integer key's largest magnitude (below 10**18): counts, limits, epochs
SHOWN_CHARS = 60  # the longest value an error quotes

T = TypeVar("T")
Default = str | int | float | bool | None  # what a key means when gParameters does not set it


def str2bool(value: object) -> bool:
    """Convert CANDLE's command-line spellings of a boolean ("True", "0", ...)."""
    if isinstance(value, bool):
        return value
    if getattr(getattr(value, "dtype", None), "kind", None) == "b":  # numpy.bool_
        return bool(value)
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {value!r}")


def _shown(value: object) -> str:
    """``repr(value)`` for an error line, shortened (a pasted megabyte stays out of the message)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for str(): Python refuses to write it
        return "an integer of thousands of digits"
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 5]}...{text[-2:]} ({len(text)} chars)"


def _integral(text: str) -> int | None:
    """The integer a string such as " 3", "3.0" or "1e3" writes exactly, or None ("3.5", "abc", "inf").

    Read as a decimal, not a float, so that a long "12345678901234567.0" stays exact; the exponent
    is bounded before the conversion, so "1e999999999" costs nothing (`Reader.integer` then refuses
    it as too many digits).
    """
    try:
        number = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        return None
    if "_" in text or not number.is_finite() or number != number.to_integral_value():
        return None  # (underscores: Decimal takes "1__0", int() does not)
    if number.is_zero():
        return 0  # "0e19": a zero's exponent says nothing of its size
    if number.adjusted() > MAX_INT_DIGITS:
        return 10**MAX_INT_DIGITS  # too long: refused by the caller, with the digits it allows
    return int(number)


class Reader:
    """Reads typed values out of a gParameters mapping, naming the key on error."""

    def __init__(self, params: Mapping[str, object], where: str, defaults: Mapping[str, Default]) -> None:
        self.params = params
        self.where = where
        self.defaults = defaults

    def fail(self, key: str, value: object, wanted: str) -> ParamError:
        return ParamError(self.where, key, f"must be {wanted}, got {_shown(value)}")

    def get(self, key: str, convert: Callable[[str, object], T]) -> T:
        """The value of ``key`` (its `OPTIONS` default when unset or None) converted."""
        value = self.params.get(key)
        return convert(key, self.defaults[key] if value is None else value)

    def optional(self, key: str, convert: Callable[[str, object], T | None]) -> T | None:
        """As `get`, for a key whose default is None (unset)."""
        value = self.params.get(key)
        return None if value is None else convert(key, value)

    def boolean(self, key: str, value: object) -> bool:
        try:
            return str2bool(value)
        except argparse.ArgumentTypeError:
            raise self.fail(key, value, "a boolean (True/False)") from None

    def integer(self, key: str, value: object, minimum: int | None = None) -> int:
        result: int | None = None
        if (isinstance(value, numbers.Integral) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        ):
            result = int(value)
        elif isinstance(value, str) and len(value) <= 2 * MAX_INT_DIGITS:
            result = _integral(value)
        wanted = "an integer" if minimum is None else f"an integer >= {minimum}"
        if result is not None and abs(result) >= 10**MAX_INT_DIGITS:
            raise self.fail(key, value, f"{wanted} of at most {MAX_INT_DIGITS} digits")
        if result is None or (minimum is not None and result < minimum):
            raise self.fail(key, value, wanted)
        return result

    def real(self, key: str, value: object, finite: bool = True) -> float:
        """A number; with ``finite`` (every key but a best metric's) never NaN or infinite."""
        if isinstance(value, bool) or not isinstance(value, (str, bytes, SupportsFloat)):
            raise self.fail(key, value, "a number")
        try:
            result = float(value)
        except (TypeError, ValueError, OverflowError):
            raise self.fail(key, value, "a number") from None
        if finite and not math.isfinite(result):
            raise self.fail(key, value, "a finite number")
        return result

    def seconds(self, key: str, value: object) -> float:
        result = self.real(key, value)
        if result < 0:
            raise self.fail(key, value, "a number of seconds >= 0")
        return result

    def string(self, key: str, value: object) -> str:
        if isinstance(value, (dict, list, tuple, set)):
            raise self.fail(key, value, "a string")
        return str(value)

    def choice(self, key: str, value: object, allowed: tuple[str, ...]) -> str:
        """One of ``allowed`` (all lower case), in any case and with surrounding blanks: "AUTO" is "auto"."""
        text = self.string(key, value).strip().lower()
        if text not in allowed:
            raise self.fail(key, value, "one of " + "|".join(allowed))
        return text
