"""The import contracts of ``pyproject.toml`` (``[tool.importlinter]``, run by ``make lint``) catch
an import that goes up a layer.

Each case copies the package and the project file into ``tmp_path`` and runs ``lint-imports`` there
in a child process, on the clean copy and on one given a deliberate upward import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _copy(tmp_path: Path) -> Path:
    """A copy of the package and ``pyproject.toml`` (the contracts) under ``tmp_path``."""
    shutil.copytree(ROOT / "candle_restart", tmp_path / "candle_restart",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo"], cwd=where, env=env,
                          text=True, capture_output=True, timeout=120)


def _add_import(module: Path, line: str) -> None:
    text = module.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    assert sep, f"{module} has no `from __future__` line to put the import after"
    module.write_text(head + sep + line + "\n" + rest)


def test_the_clean_copy_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_record_importing_the_coordinator_breaks_the_layers(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    _add_import(copy / "candle_restart" / "records" / "taskstate.py",
                "from candle_restart.coordinator import policy  # noqa: F401")
    done = _lint(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "each layer imports only the layers below it BROKEN" in done.stdout
    assert "candle_restart.records.taskstate -> candle_restart.coordinator.policy" in done.stdout


def test_the_runtime_importing_the_checkpoint_engine_breaks_the_layers(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    _add_import(copy / "candle_restart" / "runtime" / "fsio.py",
                "from candle_restart.ckpt import layout  # noqa: F401")
    done = _lint(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "candle_restart.runtime.fsio -> candle_restart.ckpt.layout" in done.stdout


def test_one_sibling_importing_another_breaks_their_independence(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    _add_import(copy / "candle_restart" / "task" / "result.py",
                "from candle_restart.torch import tensorio  # noqa: F401")
    done = _lint(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "candle_restart.task.result -> candle_restart.torch.tensorio" in done.stdout


def test_the_checkpoint_core_importing_parsl_breaks_its_contract(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    _add_import(copy / "candle_restart" / "ckpt" / "keep.py", "import parsl  # noqa: F401")
    done = _lint(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "candle, ckpt, runtime and records import no framework, no Parsl BROKEN" in done.stdout
    assert "candle_restart.ckpt.keep -> parsl" in done.stdout
