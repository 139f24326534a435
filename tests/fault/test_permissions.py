"""Files follow the user's umask (nothing world-writable); a run root the user cannot write is refused."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from candle_restart.task import create_task
from tests.helpers import ROOT, runner_env


def test_everything_a_task_writes_follows_the_umask(tmp_path: Path) -> None:
    task = create_task(tmp_path / "run", {"epochs": 2}, entry="tests.coordinator.toy:run")
    code = f"import os, sys; os.umask(0o027); from candle_restart.task import run_task; sys.exit(run_task({str(task.path)!r}))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=runner_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    written = [p for p in task.path.rglob("*") if not p.is_symlink() and p.name != "task.json"]
    assert len(written) > 8
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o007 == 0, f"{path} is {oct(mode)} despite umask 027"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_run_root_owned_by_another_user_is_refused_with_one_line() -> None:
    from candle_restart.sweep import SweepError, expand, parse_sweep

    base = Path(tempfile.mkdtemp(prefix="candle-restart-perm-"))
    try:
        os.chmod(base, 0o755)
        (base / "runs").mkdir(mode=0o755)  # owned by root; "nobody" may not write
        config = base / "s.yaml"
        config.write_text(
            "name: s\nrun_root: runs/s\nentry: candle_restart.examples.regression:run\nparams: {epochs: 1}\n"
        )
        os.chmod(config, 0o644)
        sweep = parse_sweep(config)
        os.seteuid(65534)  # act as "nobody" for the expansion only
        try:
            with pytest.raises(SweepError) as err:
                expand(sweep)
        finally:
            os.seteuid(0)
        assert (
            "\n" not in str(err.value) and "run_root: " in str(err.value) and "not writable" in str(err.value)
        )
        assert sorted(p.name for p in (base / "runs").iterdir()) == []
    finally:
        shutil.rmtree(base)
