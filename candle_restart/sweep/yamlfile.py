"""Reading a sweep YAML: one-line errors for bytes, syntax, depth and alias bombs; the line of every key.

`load_yaml` also reports every plain scalar YAML 1.1 reads as a base-60 number (an unquoted
``2:00:00`` is 7200), so the schema can say to quote it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from candle_restart.errors import CkptError
from candle_restart.records.jsonio import MAX_INT_DIGITS, utf8


class SweepError(CkptError):
    """The sweep YAML is invalid: ``file:line: key: problem``."""


MAX_DEPTH = 64  # mappings and lists nested deeper than this are refused
MAX_VALUES = 100_000  # values after YAML aliases are expanded: more is refused (an "alias bomb")


class _TooDeep(Exception):
    pass


class _TooLong(Exception):
    """A plain scalar that YAML would read as an integer of more digits than JSON files may hold."""

    def __init__(self, line: int, digits: int) -> None:
        self.line, self.digits = line, digits


_LONG_INT = re.compile(rf"^[-+]?[0-9_]{{{MAX_INT_DIGITS + 1},}}$")  # past what a task.json may hold
_BASE60 = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")  # YAML 1.1's sexagesimal numbers


def _walk(
    node: yaml.Node,
    path: tuple[str, ...],
    out: dict[tuple[str, ...], int],
    sizes: dict[int, int],
    depth: int,
    base60: dict[tuple[str, ...], str] | None = None,
) -> int:
    """Record the line of every key path into ``out``; return how many values ``node`` expands to.

    ``base60`` gets the text of every plain scalar that YAML 1.1 reads as a base-60 number.

    Each node is walked once (``sizes`` is the memo), so aliases cost nothing here; the paths
    under a second use of an alias have no line of their own and point at their parent's.
    """
    if id(node) in sizes:
        return sizes[id(node)]
    if depth > MAX_DEPTH:
        raise _TooDeep
    if isinstance(node, yaml.ScalarNode) and not node.style and _LONG_INT.match(node.value):
        raise _TooLong(node.start_mark.line + 1, sum(c.isdigit() for c in node.value))
    out.setdefault(path, node.start_mark.line + 1)
    if (
        base60 is not None
        and isinstance(node, yaml.ScalarNode)
        and not node.style
        and _BASE60.match(node.value)
    ):
        base60[path] = node.value
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            key = (*path, name)
            size += _walk(key_node, (*path, "?"), {}, sizes, depth + 1)
            size += _walk(value_node, key, out, sizes, depth + 1, base60)
            out[key] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            size += _walk(item, (*path, str(i)), out, sizes, depth + 1, base60)
    sizes[id(node)] = size
    return size


def load_yaml(
    source: Path, base60: dict[tuple[str, ...], str] | None = None
) -> tuple[object, dict[tuple[str, ...], int]]:
    """Parse ``source``; return the data and the line of every key path (``base60``: see `_walk`).

    Refused with one line: bytes that are not UTF-8, invalid YAML, nesting deeper than
    `MAX_DEPTH`, and more than `MAX_VALUES` values once aliases are expanded.
    """
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise SweepError(str(source), None, f"cannot be read: {exc.strerror}") from None
    try:
        text = utf8(raw)
    except ValueError as exc:
        raise SweepError(str(source), None, str(exc)) from None
    deep = SweepError(str(source), None, f"nests mappings or lists more than {MAX_DEPTH} deep")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        lines: dict[tuple[str, ...], int] = {}
        if node is not None and _walk(node, (), lines, {}, 0, base60) > MAX_VALUES:
            raise SweepError(
                str(source), None, f"expands to more than {MAX_VALUES} values (through YAML aliases)"
            )
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else str(source)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line, always
        raise SweepError(where, None, f"is not valid YAML: {problem}") from None
    except (_TooDeep, RecursionError):
        raise deep from None
    except _TooLong as exc:
        raise SweepError(
            f"{source}:{exc.line}", None, f"has an integer of {exc.digits} digits (at most {MAX_INT_DIGITS})"
        ) from None
    return data, lines
