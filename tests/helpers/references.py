"""Uninterrupted reference trainings, run once per session and kept by their arguments.

An exact-resume test compares an interrupted-and-resumed training with the same training run
without interruption. The uninterrupted run depends only on its arguments, so one session-scoped
`References` (the ``references`` fixture of ``tests/conftest.py``) runs each distinct one once,
for every test and parametrisation that asks, and runs the missing ones of a batch side by side.

Each reference writes its final variables with ``weights_out`` (the example benchmark's option):
`Reference.weights` is that file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candle_restart.task import create_task
from tests.helpers.processes import EXAMPLE, HANG, ROOT, runner_env


@dataclass(frozen=True)
class Reference:
    """A finished uninterrupted training: its folder (a task directory for a task) and its weights."""

    path: Path
    weights: Path


class References:
    """The session's reference trainings, keyed by their arguments."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: dict[str, Reference] = {}

    def task(self, entry: str, params: Mapping[str, Any]) -> Reference:
        """The task of ``entry`` with ``params`` (``weights_out`` added), run by the task runner."""
        return self.tasks(entry, [params])[0]

    def tasks(self, entry: str, params: Sequence[Mapping[str, Any]]) -> list[Reference]:
        """`task` for each of ``params``; those not yet run are run at the same time."""
        keys = [_key({"entry": entry, "params": dict(p)}) for p in params]
        todo: dict[str, _Run] = {}
        for key, p in zip(keys, params, strict=True):
            if key in self._done or key in todo:
                continue
            folder = self._folder()
            task = create_task(folder, {**p, "weights_out": str(folder / "weights.npz")}, entry=entry)
            argv = [sys.executable, "-m", "candle_restart.task", str(task.path)]
            todo[key] = _Run(argv, ROOT, Reference(task.path, folder / "weights.npz"))
        self._run(todo)
        return [self._done[key] for key in keys]

    def example(self, args: Iterable[str]) -> Reference:
        """The example benchmark (``python -m candle_restart.examples.regression``) with ``args``
        (``--weights_out`` added), run in a folder of its own."""
        args = list(args)
        key = _key({"example": args})
        if key not in self._done:
            folder = self._folder()
            argv = [sys.executable, "-m", EXAMPLE, *args, "--weights_out", str(folder / "weights.npz")]
            self._run({key: _Run(argv, folder, Reference(folder, folder / "weights.npz"))})
        return self._done[key]

    def _folder(self) -> Path:
        folder = self.root / f"ref-{len(list(self.root.iterdir()))}"
        folder.mkdir(parents=True)
        return folder

    def _run(self, todo: Mapping[str, _Run]) -> None:
        """Run ``todo``, at most as many at once as this process may use CPUs."""
        pending = list(todo.items())
        width = max(1, len(os.sched_getaffinity(0)))
        while pending:
            batch, pending = pending[:width], pending[width:]
            started = [(key, run, run.start()) for key, run in batch]
            for key, run, proc in started:
                out, _ = proc.communicate(timeout=HANG)
                where = run.reference.path
                assert proc.returncode == 0, f"reference {where} failed ({proc.returncode}):\n{out[-3000:]}"
                assert run.reference.weights.is_file(), f"reference {where} wrote no weights:\n{out[-3000:]}"
                self._done[key] = run.reference


@dataclass(frozen=True)
class _Run:
    argv: list[str]
    cwd: Path
    reference: Reference

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=runner_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _key(args: Mapping[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, default=str)
