"""Reading JSON that anyone may have written: every failure is one `ValueError` line, never a crash.

Every reader of the project's JSON files (``task.json``, ``state.json``, journal lines,
``ckpt-info.json``, the sweep manifest) parses through `loads` or `read_json`.

Contract:

* text nested deeper than `MAX_DEPTH` arrays/objects, or holding an integer of more
  than `MAX_INT_DIGITS` digits, is refused with `JsonError` before anything else sees it
  (``json.loads`` would raise ``RecursionError`` on deep nesting, and ``ValueError`` on an
  integer of more than 4300 digits; a smaller but huge integer breaks ``float()`` later);
* anything else ``json.loads`` refuses is a `JsonError` too, in one line with its position;
* ``NaN`` and ``Infinity`` are accepted (CANDLE writes them): callers that need finite
  numbers check for themselves;
* `read_json` also refuses bytes that are not UTF-8; a missing file raises
  ``FileNotFoundError`` unchanged, other I/O errors are a `JsonFileError`.

Cost: one ``count`` over the text; the exact depth is computed only when the text holds
more than `MAX_DEPTH` opening brackets, and the integer check only when a digit run is long.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

from candle_restart.errors import CkptError, is_transient

MAX_DEPTH = 64
MAX_INT_DIGITS = 100

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_LONG_DIGITS = re.compile(rf"\d{{{MAX_INT_DIGITS + 1},}}")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonError(ValueError):
    """Text that is not JSON this project reads (the message is one line)."""


class JsonFileError(CkptError):
    """A JSON file that cannot be read or parsed: ``<file>: <problem>`` (``key`` is None).

    ``transient`` is True when an I/O error that says nothing of the content
    (EIO, EACCES, ESTALE) stopped the read: the file may well be fine.
    """

    transient = False


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonError(f"has an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


_PLAIN = json.JSONDecoder()
_BOUNDED = json.JSONDecoder(parse_int=_bounded_int)


def too_deep(text: str) -> bool:
    """True when arrays and objects nest more than `MAX_DEPTH` deep in JSON ``text``
    (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(itertools.accumulate(_STEP[b] for b in brackets), default=0) > MAX_DEPTH


def loads(text: str) -> Any:
    """Parse ``text`` (see the module contract); raise `JsonError` (one line) if it cannot be."""
    if too_deep(text):
        raise JsonError(f"nests arrays or objects more than {MAX_DEPTH} deep")
    decoder = _BOUNDED if _LONG_DIGITS.search(text) else _PLAIN
    try:
        return decoder.decode(text)
    except JsonError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonError(f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # a float or int json itself refuses; never expected
        raise JsonError(f"is not valid JSON ({' '.join(str(exc).split())})") from None


def read_json(path: Path) -> Any:
    """Read and parse the file ``path``.

    Raises ``FileNotFoundError`` when it is missing and `JsonFileError` (``<path>: <problem>``,
    one line) when it cannot be read, is not UTF-8 or is not JSON this project reads.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        error = JsonFileError(str(path), None, f"cannot be read: {exc.strerror or exc}")
        error.transient = is_transient(exc)
        raise error from None
    try:
        return loads(utf8(data))
    except ValueError as exc:  # JsonError included
        raise JsonFileError(str(path), None, str(exc)) from None


def utf8(data: bytes) -> str:
    """``data`` decoded as UTF-8; ValueError naming the first bad byte and its offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-Infinity) inside it replaced by None, so that
    it can be written as strict JSON; other values are returned as they are."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
