"""The sbatch script, byte for byte, against golden files (no cluster needed).

A change to `candle_restart.slurm.script.render` shows up here as a diff a
reviewer reads.  After an intended change, regenerate with
``CANDLE_RESTART_UPDATE_GOLDEN=1 pytest tests/slurm/test_script_golden.py``
and commit the new files with the change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from candle_restart.executor import SlurmOptions
from candle_restart.slurm.script import list_lines, render, sbatch_command
from candle_restart.task.taskdir import TaskDir
from tests.helpers import check_golden

GOLDEN = Path(__file__).parent / "golden"
RUN = Path("/scratch/run root")  # a space: every path must come out quoted
PYTHON = "/opt/venv/bin/python"

CASES: dict[str, SlurmOptions] = {
    "array-defaults": {},
    "array-cluster": {
        "walltime": "02:00:00",
        "partition": "gpu",
        "account": "candle",
        "qos": "high",
        "gres": "gpu:1",
        "nodes": 1,
        "throttle": 4,
        "signal_seconds": 300,
        "extra": ["--exclusive", "--constraint=a100"],
    },
    "array-no-requeue-self-requeue": {"requeue": False, "self_requeue": True},
    "array-no-signal": {"signal_seconds": 0, "walltime": "00:01:00"},
}


def _check(name: str, text: str) -> None:
    check_golden(GOLDEN, name, text)


@pytest.mark.parametrize("case", sorted(CASES))
def test_sbatch_script_matches_its_golden_file(case: str) -> None:
    text = render("cr-batch", RUN / ".slurm" / "cr-batch.tsv", 3, CASES[case], python=PYTHON)
    _check(f"{case}.sbatch", text)


def test_output_path_with_spaces_goes_on_the_command_line() -> None:
    argv = sbatch_command(RUN / ".slurm" / "cr-batch.sbatch", "cr-batch", RUN / ".slurm")
    assert argv == [
        "sbatch",
        "--parsable",
        "--output=/scratch/run root/.slurm/cr-batch-%A_%a.out",
        "/scratch/run root/.slurm/cr-batch.sbatch",
    ]


HOSTILE = Path("/scratch/my proj/$HOME 'q' `id` ;x 100%j")  # every shell-special character a user may type


def test_shell_special_run_root_is_quoted_in_the_script() -> None:
    text = render("cr-batch", HOSTILE / ".slurm" / "cr-batch.tsv", 3, {}, python="/opt/my venv/bin/python")
    _check("array-hostile-path.sbatch", text)


def test_output_path_doubles_percent_and_refuses_what_sbatch_cannot_take() -> None:
    argv = sbatch_command(HOSTILE / ".slurm" / "cr-batch.sbatch", "cr-batch", HOSTILE / ".slurm")
    assert argv[2] == "--output=/scratch/my proj/$HOME 'q' `id` ;x 100%%j/.slurm/cr-batch-%A_%a.out"
    assert argv[3] == str(HOSTILE / ".slurm" / "cr-batch.sbatch")  # one argv item: no shell sees it
    with pytest.raises(ValueError, match="backslash"):
        sbatch_command(Path("/a\\b/x.sbatch"), "cr-batch", Path("/a\\b"))


def test_list_file_matches_its_golden_file() -> None:
    items = [(TaskDir(RUN / f"t{i:03d}"), g) for i, g in enumerate((1, 4, 2))]
    _check("array.tsv", list_lines(items))


def test_hosts_to_avoid_become_one_exclude_directive_before_the_users_extra() -> None:
    options = {"partition": "gpu", "extra": ["--constraint=a100"]}
    text = render("cr-batch", RUN / ".slurm" / "cr-batch.tsv", 3, options, python=PYTHON, exclude=["n1", "n7"])  # type: ignore[arg-type]
    _check("array-exclude.sbatch", text)
    assert text.index("#SBATCH --exclude=n1,n7") < text.index("#SBATCH --constraint=a100")
