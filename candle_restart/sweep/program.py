"""What a sweep's tasks run: the ``entry`` or ``command`` of the YAML, checked and made location-free.

Contract of `check_program` (called by `candle_restart.sweep.schema.parse_sweep`):

* ``entry: module:function``: the YAML's folder is the first directory of the
  import path, at parse time and, through ``python_path`` in each ``task.json``,
  wherever the runner runs the task (no ``PYTHONPATH`` needed for a module next
  to the YAML).  The module must be found and, when it is a Python source file,
  must define the function at its top level (read with `ast`, never imported:
  importing would start TensorFlow); otherwise one line names the file, the key
  and the problem, with a "did you mean" when a name is close.
* ``command: [...]``: ``command[0]`` with a ``/`` is taken relative to the YAML's
  folder and must be executable; without one it must be on ``PATH`` (or be an
  executable file next to the YAML).  Every later item that is not an option
  (does not start with ``-``), is not absolute and names an existing file or
  folder relative to the YAML's folder is replaced by its absolute path (a task
  runs in its own task directory, where a relative path would name nothing).
  Items of the form ``--key=value`` and words that name nothing are kept as
  written.  ``python script.py`` with a missing ``script.py`` is refused.
* ``dir_flags`` (``command`` only, default true): whether the runner appends
  ``--ckpt_directory=`` and ``--output_dir=`` to the command; both are always
  in the environment (`candle_restart.runtime.envvars.CKPT_DIRECTORY_ENV`,
  `OUTPUT_DIR_ENV`).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import re
import shutil
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Protocol

from candle_restart.errors import CkptError


class _Fails(Protocol):
    source: Path

    def fail(self, path: tuple[str, ...], problem: str) -> CkptError: ...


@dataclass(frozen=True)
class Program:
    """The checked ``entry`` or ``command``, with what the runner needs to run it from anywhere."""

    entry: str | None
    command: list[str] | None
    python_path: list[str]
    dir_flags: bool


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _top_level_names(body: list[ast.stmt]) -> tuple[set[str], bool]:
    """Names a module body defines at its top level (also inside ``if``/``try``/``with``/loops),
    and whether it may define others that cannot be seen (``import *``, a module ``__getattr__``)."""
    names: set[str] = set()
    dynamic = False
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                dynamic = dynamic or alias.name == "*"
                names.add((alias.asname or alias.name).split(".")[0])
        else:
            blocks = [getattr(node, key, []) for key in ("body", "orelse", "finalbody")]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            for block in blocks:
                inner, more = _top_level_names(block)
                names |= inner
                dynamic = dynamic or more
    return names, dynamic or "__getattr__" in names


def _find_spec(module: str, folder: Path) -> ModuleSpec | None:
    """``importlib.util.find_spec(module)`` with ``folder`` first on the import path."""
    sys.path.insert(0, str(folder))
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    finally:
        sys.path.remove(str(folder))


def _check_entry(c: _Fails, entry: object) -> str:
    if not isinstance(entry, str) or not re.match(r"^[\w.]+:[\w.]+$", entry):
        raise c.fail(("entry",), f"must look like package.module:function, got {entry!r}")
    module, _, attr = entry.partition(":")
    folder = c.source.parent
    spec = _find_spec(module, folder)
    if spec is None:
        raise c.fail(
            ("entry",),
            f"module {module!r} cannot be imported (looked in {folder} and on the Python path)",
        )
    origin = spec.origin if spec.has_location else None
    if not origin or not origin.endswith(".py"):
        return entry  # a compiled or namespace module: the runner's import is the check
    try:
        tree = ast.parse(Path(origin).read_bytes(), filename=origin)
    except (OSError, SyntaxError, ValueError) as exc:
        raise c.fail(("entry",), f"module {module!r} ({origin}) cannot be read: {exc}") from None
    names, dynamic = _top_level_names(tree.body)
    function = attr.split(".")[0]
    if function not in names and not dynamic:
        defined = sorted(n for n in names if not n.startswith("_"))
        raise c.fail(
            ("entry",),
            f"module {module!r} ({origin}) has no {function!r}{did_you_mean(function, defined)}",
        )
    return entry


def _resolve(item: str, folder: Path) -> str:
    """``item`` as an absolute path when it names an existing file or folder next to the YAML."""
    if not item or item.startswith("-") or os.path.isabs(item) or "\0" in item:
        return item
    candidate = folder / item
    try:
        return os.path.abspath(candidate) if candidate.exists() else item
    except (OSError, ValueError):  # a name too long for a path is not a path
        return item


def _check_command(c: _Fails, command: object) -> list[str]:
    if isinstance(command, str):
        command = command.split()
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(x, (str, int, float)) for x in command)
    ):
        raise c.fail(("command",), "must be a non-empty list of strings")
    command = [str(x) for x in command]
    folder = c.source.parent
    program = command[0]
    if "/" in program:  # relative to the YAML's directory, so the task can run from anywhere
        path = Path(program) if os.path.isabs(program) else folder / program
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            raise c.fail(("command",), f"{path} does not exist or is not executable")
        command[0] = os.path.abspath(path)  # not resolved: a venv's python is a symlink that must stay one
    elif shutil.which(program) is None:
        beside = folder / program
        if not (beside.is_file() and os.access(beside, os.X_OK)):
            raise c.fail(("command",), f"{program!r} is not on PATH (nor an executable file in {folder})")
        command[0] = os.path.abspath(beside)
    command[1:] = [_resolve(item, folder) for item in command[1:]]
    script = command[1] if len(command) > 1 else ""
    if Path(command[0]).name.startswith("python") and script.endswith(".py") and not os.path.isabs(script):
        raise c.fail(("command",), f"{script!r} does not exist in {folder} (the YAML's folder)")
    return command


def check_program(c: _Fails, data: Mapping[str, object]) -> Program:
    """The checked ``entry``/``command``/``dir_flags`` of the YAML mapping ``data`` (module docstring)."""
    entry, command = data.get("entry"), data.get("command")
    if (entry is None) == (command is None):
        raise c.fail(("entry",), "exactly one of 'entry' (package.module:function) or 'command' is required")
    dir_flags = data.get("dir_flags", True)
    if not isinstance(dir_flags, bool):
        raise c.fail(("dir_flags",), f"must be true or false, got {dir_flags!r}")
    if entry is not None:
        if "dir_flags" in data:
            raise c.fail(("dir_flags",), "applies to a 'command' only (an entry gets gParameters)")
        return Program(_check_entry(c, entry), None, [str(c.source.parent)], True)
    return Program(None, _check_command(c, command), [], dir_flags)
