"""Reading JSON that anyone may have written: every failure is one `ValueError` line, never a crash.

Every reader of the project's JSON files (``task.json``, ``state.json``, journal lines,
``ckpt-info.json``, the sweep manifest) parses through `loads` or `read_json`.

Contract:

* text longer than `MAX_TEXT_CHARS` (a file larger than `MAX_FILE_BYTES`), nested deeper than
  `MAX_DEPTH` arrays/objects, or holding an integer of more than `MAX_INT_DIGITS` digits, is
  refused with `JsonError` before anything else sees it (``json.loads`` would raise
  ``RecursionError`` on deep nesting, and ``ValueError`` on an integer of more than 4300 digits;
  a smaller but huge integer breaks ``float()`` later);
* anything else ``json.loads`` refuses is a `JsonError` too, in one line with its position;
* ``NaN`` and ``Infinity`` are accepted (CANDLE writes them): callers that need finite
  numbers check for themselves;
* `read_json` also refuses bytes that are not UTF-8 and anything that is not a regular file (a
  FIFO would block the reader); a missing file raises ``FileNotFoundError`` unchanged, other
  I/O errors are a `JsonFileError`.

Cost: linear in the text, whatever it holds.  One ``count`` decides whether the depth can
exceed `MAX_DEPTH` at all; only then are strings removed (one possessive regular expression
that looks at each character once, an unterminated string running to the end of the text)
and the brackets left summed.  The integer check runs only when a digit run is long.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from candle_restart.errors import CkptError, is_transient

MAX_DEPTH = 64
MAX_INT_DIGITS = 100
MAX_FILE_BYTES = 16 << 20  # no file this project writes comes near it
MAX_TEXT_CHARS = MAX_FILE_BYTES

# A JSON string from its opening quote to its closing one, or to the end of the text when it is
# never closed.  Possessive (no backtracking) and always matching once started, so each character
# is looked at once: the pattern it replaces retried from every quote of an unclosed run, which
# made a line of quotes quadratic (a 96 KB journal line cost ``status`` a minute).
_STRING = re.compile(r'"(?:[^"\\]++|\\.|\\\Z)*+(?:"|\Z)', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# A run of more than MAX_INT_DIGITS ASCII digits; the look-behind starts a match only at the
# start of a run (without it, every position of a 100-digit run was tried: 100 times the text).
_LONG_DIGITS = re.compile(rf"(?<![0-9])[0-9]{{{MAX_INT_DIGITS + 1},}}")
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
    brackets = _BRACKET.findall(_STRING.sub("", text))  # linear (see `_STRING`)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH


def loads(text: str) -> Any:
    """Parse ``text`` (see the module contract); raise `JsonError` (one line) if it cannot be."""
    if len(text) > MAX_TEXT_CHARS:
        raise JsonError(f"is {len(text)} characters long (at most {MAX_TEXT_CHARS})")
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
        data = read_regular(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        error = JsonFileError(str(path), None, f"cannot be read: {exc.strerror or exc}")
        error.transient = is_transient(exc)
        raise error from None
    except ValueError as exc:
        raise JsonFileError(str(path), None, str(exc)) from None
    try:
        return loads(utf8(data))
    except ValueError as exc:  # JsonError included
        raise JsonFileError(str(path), None, str(exc)) from None


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file ``path``; ValueError when it is something else (a FIFO, a
    device: opened without blocking, never read) or larger than `MAX_FILE_BYTES`; OSError as
    raised (``FileNotFoundError`` when it is missing)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:  # plain system calls: a scan reads several small files per task, and no file object is needed
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("is not a regular file")
        chunks = [os.read(fd, min(st.st_size, MAX_FILE_BYTES) + 1)]
        while chunks[-1] and sum(map(len, chunks)) <= MAX_FILE_BYTES:  # grew since the fstat, or short
            chunks.append(os.read(fd, MAX_FILE_BYTES + 1 - sum(map(len, chunks))))
    finally:
        os.close(fd)
    data = chunks[0] if len(chunks) == 2 and not chunks[1] else b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"is larger than {MAX_FILE_BYTES} bytes")
    return data


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
