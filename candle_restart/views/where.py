"""Refusing a folder that is not a run root, with a pointer to the right one.

`check_run_root` passes a directory that holds at least one task directory (``*/task.json``).
Anything else raises `NotARunRoot` (one line; the command exits 2) and the line says where the
tasks are, when it can tell:

* the folder is itself a task directory: its run root is the parent;
* it holds a sweep YAML: the ``run_root`` that YAML names (relative to the YAML's folder,
  ``runs/<name>`` by default), or that the sweep has not been run yet;
* run roots lie below it (folders holding task directories, or a sweep's ``.sweep-*.json``),
  looked for at most `MAX_DEPTH` levels down and `MAX_VISITS` folders.

Contract: reads only; never raises anything but `NotARunRoot` and `RunRootError` (a missing
folder keeps its old one line, ``PATH: is not a directory``).
"""

from __future__ import annotations

import os
from pathlib import Path

from candle_restart.coordinator.resume import task_dirs
from candle_restart.errors import CkptError
from candle_restart.task.taskdir import TASK_FILE

MAX_DEPTH = 3
MAX_VISITS = 5000
MAX_SHOWN = 3


class NotARunRoot(CkptError):
    """A command that needs a run root was given a folder without tasks."""


def _count(root: Path) -> int:
    try:
        return len(task_dirs(root))
    except (CkptError, OSError):
        return 0


def _yaml_roots(folder: Path) -> list[tuple[Path, str]]:
    """What each sweep YAML directly in ``folder`` says about its run root: (run root, hint)."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is a dependency
        return []
    hints = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])[:10]:
        try:
            data: object = yaml.safe_load(path.read_text(errors="replace"))
        except (OSError, yaml.YAMLError, RecursionError, ValueError):
            continue
        if not isinstance(data, dict) or not ({"entry", "command"} & set(data)):
            continue
        name = data.get("name")
        run_root = data.get("run_root", f"runs/{name}" if isinstance(name, str) else None)
        if not isinstance(run_root, str) or not run_root:
            continue
        root = Path(run_root) if os.path.isabs(run_root) else path.parent / run_root
        n = _count(root)
        state = f"{n} tasks" if n else f"no tasks yet: candle-restart sweep run {path}"
        hints.append((root, f"the sweep YAML {path} has run_root {root} ({state})"))
    return hints


def _roots_below(folder: Path) -> list[Path]:
    """Run roots under ``folder`` (breadth first, bounded; see the module docstring)."""
    found: list[Path] = []
    level, visits = [folder], 0
    for _ in range(MAX_DEPTH):
        following = []
        for directory in level:
            try:
                with os.scandir(directory) as entries:
                    items = sorted(
                        (e for e in entries if e.is_dir(follow_symlinks=False)), key=lambda e: e.name
                    )
            except OSError:
                continue
            has_sweep = any(e.name.startswith(".sweep-") for e in _files(directory))
            for entry in items:
                visits += 1
                if entry.name.startswith("."):
                    continue
                if os.path.exists(os.path.join(entry.path, TASK_FILE)):
                    has_sweep = True
                else:
                    following.append(Path(entry.path))
                if visits >= MAX_VISITS:
                    break
            if has_sweep and directory != folder:
                found.append(directory)
        level = following
        if visits >= MAX_VISITS or not level:
            break
    return found


def _files(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return [e for e in entries if e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def check_run_root(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path when it holds tasks; else `NotARunRoot` (or `RunRootError`), see the module."""
    root = Path(path)
    if task_dirs(root):  # raises RunRootError when it is not a directory
        return root
    hints: list[str] = []
    if (root / TASK_FILE).exists():
        hints.append(f"it is a task directory; its run root is {root.resolve().parent}")
    named = _yaml_roots(root)
    hints += [hint for _, hint in named]
    below = [p for p in _roots_below(root) if p.resolve() not in {r.resolve() for r, _ in named}]
    if below:
        shown = ", ".join(f"{p} ({_count(p)} tasks)" for p in below[:MAX_SHOWN])
        more = f" and {len(below) - MAX_SHOWN} more" if len(below) > MAX_SHOWN else ""
        hints.append(f"run roots below it: {shown}{more}")
    hint = "; ".join(hints) or "pass the folder a sweep's run_root names (it holds one folder per task)"
    raise NotARunRoot(str(root), None, f"is not a run root (no task directories in it); {hint}")
