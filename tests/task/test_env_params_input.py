"""``CANDLE_RESTART_PARAMS`` is input like any other: through the safe JSON reader, regular files
only with a size cap, finite numbers.  Each hostile value makes the runner exit 2 with one line,
``state.json`` says ``bad_input`` (never left ``running``), and nothing is made in ``ckpts/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from candle_restart.ckpt.envparams import ENV_VAR, MAX_FILE_BYTES
from candle_restart.task import create_task
from tests.helpers import ROOT, runner_env, state

DEEP = '{"ckpt_metadata": ' + "[" * 5000 + "]" * 5000 + "}"
HUGE_INT = '{"ckpt_keep_limit": ' + "9" * 5000 + "}"

CASES = {
    "deep-json": (DEEP, "nests arrays or objects more than"),
    "huge-int-json": (HUGE_INT, "has an integer of 5000 digits"),
    "huge-int-pairs": ("ckpt_keep_limit=" + "9" * 5000, "ckpt_keep_limit: must be an integer"),
    "infinite-pairs": ("ckpt_halt_seconds=1e309", "ckpt_halt_seconds: must be a finite number"),
    "infinite-json": ('{"ckpt_save_seconds": 1e999}', "ckpt_save_seconds: must be a finite number"),
    "nan-json": ('{"ckpt_halt_seconds": NaN}', "ckpt_halt_seconds: must be a finite number"),  # refused before too
    "fifo": ("@FIFO", "is not a regular file"),
    "dev-zero": ("@/dev/zero", "is not a regular file"),
    "big-file": ("@BIG", f"is larger than {MAX_FILE_BYTES} bytes"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_params_variable_is_bad_input_in_one_line(tmp_path: Path, case: str) -> None:
    value, expected = CASES[case]
    fifo, big = tmp_path / "params.fifo", tmp_path / "big.conf"
    os.mkfifo(fifo)
    big.write_text("# padding\n" * (MAX_FILE_BYTES // 10 + 10))
    value = value.replace("@FIFO", f"@{fifo}").replace("@BIG", f"@{big}")
    script = tmp_path / "never.py"
    script.write_text("import sys; sys.exit(0)\n")
    task = create_task(tmp_path / "run", {"epochs": 1}, command=[sys.executable, str(script)])
    proc = subprocess.run(
        [sys.executable, "-m", "candle_restart.task", str(task.path)],
        cwd=ROOT,
        env={**runner_env(), ENV_VAR: value},
        capture_output=True,
        text=True,
        timeout=120,  # a FIFO read that blocks would hang here
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert expected in last and ENV_VAR in last and len(last) < 400, last
    st = state(task.path)
    assert st["status"] == "bad_input" and st["exit_code"] == 2 and ENV_VAR in st["reason"]
    assert not task.ckpts.exists() or not any(task.ckpts.iterdir())
