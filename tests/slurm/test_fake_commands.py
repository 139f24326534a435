"""The Slurm backend's reading of squeue, scontrol and sacct, without a cluster.

These use FAKE ``squeue``/``scontrol``/``sacct``/``sbatch`` executables on
``PATH`` that print canned answers (the shapes the real commands print for the
same flags) and log each call.  They pin down how each answer is read where a
real cluster cannot be made to give it on demand (a job Slurm has forgotten, a
controller that does not answer); the same paths run against the real local
Slurm in ``test_slurm_backend.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from candle_restart.coordinator.backend import Submission
from candle_restart.slurm.backend import SlurmBackend, SlurmError
from candle_restart.task.taskdir import TaskDir

COMMANDS = ("squeue", "scontrol", "sacct", "sbatch")


class FakeSlurm:
    """Canned stdout (and exit code) per command; ``calls`` lists each command line run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        for name in COMMANDS:
            script = self.bin / name
            script.write_text(
                "#!/bin/sh\n"
                f'echo "{name} $*" >> "{root}/calls"\n'
                f'[ -f "{root}/{name}.out" ] && cat "{root}/{name}.out"\n'
                f'[ -f "{root}/{name}.err" ] && cat "{root}/{name}.err" >&2\n'
                f'exit $(cat "{root}/{name}.rc" 2>/dev/null || echo 0)\n'
            )
            script.chmod(0o755)

    def answer(self, command: str, stdout: str = "", rc: int = 0, stderr: str = "") -> None:
        (self.root / f"{command}.out").write_text(stdout)
        (self.root / f"{command}.err").write_text(stderr)
        (self.root / f"{command}.rc").write_text(str(rc))

    @property
    def calls(self) -> list[str]:
        path = self.root / "calls"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlurm]:
    slurm = FakeSlurm(tmp_path / "fake-slurm")
    monkeypatch.setenv("PATH", f"{slurm.bin}{os.pathsep}{os.environ['PATH']}")
    yield slurm


def _element(job_id: str) -> Submission:
    return Submission("slurm", 1, {"job_id": job_id})


def test_squeue_states_map_to_liveness_and_one_squeue_serves_a_scan(fake: FakeSlurm) -> None:
    fake.answer("squeue", "12_0|PENDING\n12_1|RUNNING\n12_2|COMPLETING\n13_0|REQUEUED\n")
    backend = SlurmBackend(cache_seconds=3600)
    got = [backend.liveness(_element(j)) for j in ("12_0", "12_1", "12_2", "13_0")]
    assert got == ["pending", "running", "running", "pending"]
    assert [c.split()[0] for c in fake.calls] == ["squeue"]  # cached for the whole scan
    assert fake.calls[0] == "squeue -h -r -o %i|%T"


def test_a_job_gone_from_the_queue_is_read_from_scontrol(fake: FakeSlurm) -> None:
    fake.answer("squeue", "")
    fake.answer("scontrol", "JobId=12 ArrayJobId=12 ArrayTaskId=3 JobName=b JobState=PREEMPTED Reason=None\n")
    backend = SlurmBackend()
    assert backend.liveness(_element("12_3")) == "ended"
    assert backend.final_state(_element("12_3")) == "PREEMPTED"
    assert "sacct" not in " ".join(fake.calls)  # scontrol still remembered it


def test_a_job_slurm_forgot_is_read_from_sacct_last_line_first_word(fake: FakeSlurm) -> None:
    fake.answer("squeue", "")
    fake.answer("scontrol", "", rc=1, stderr="slurm_load_jobs error: Invalid job id specified")
    fake.answer("sacct", "REQUEUED\nCANCELLED by 0\n")
    backend = SlurmBackend()
    assert backend.final_state(_element("12_3")) == "CANCELLED"
    assert any(c.startswith("sacct -n -X -P -j 12_3") for c in fake.calls)


def test_a_job_no_command_knows_has_ended_with_no_final_state(fake: FakeSlurm) -> None:
    fake.answer("squeue", "")
    fake.answer("scontrol", "", rc=1)
    fake.answer("sacct", "", rc=1, stderr="Slurm accounting storage is disabled")
    backend = SlurmBackend()
    assert backend.liveness(_element("99_0")) == "ended"
    assert backend.final_state(_element("99_0")) is None


def test_a_still_running_job_has_no_final_state(fake: FakeSlurm) -> None:
    fake.answer("squeue", "12_3|RUNNING\n")
    assert SlurmBackend().final_state(_element("12_3")) is None


def test_a_controller_that_does_not_answer_is_an_error_not_an_ended_job(fake: FakeSlurm) -> None:
    fake.answer("squeue", "", rc=1, stderr="slurm_load_jobs error: Unable to contact slurm controller")
    with pytest.raises(SlurmError, match="Unable to contact slurm controller"):
        SlurmBackend().liveness(_element("12_3"))


def test_find_recovers_an_unjournaled_element_by_the_arrays_job_name(fake: FakeSlurm, tmp_path: Path) -> None:
    run_root = tmp_path / "runs"
    tasks = [TaskDir(run_root / name) for name in ("a", "b")]
    slurm_dir = run_root / ".slurm"
    slurm_dir.mkdir(parents=True)
    (slurm_dir / "cr-7.tsv").write_text(f"3\t{tasks[0].path}\n5\t{tasks[1].path}\n")
    fake.answer("squeue", "4242\n")  # no .jobid file: the coordinator died right after sbatch
    backend = SlurmBackend()
    found = backend.find(tasks[1], 5, "cr-7")
    assert found is not None and found.data["job_id"] == "4242_1" and found.generation == 5
    assert backend.find(tasks[1], 4, "cr-7") is None  # another generation was never submitted
    assert "squeue -h -n cr-7 -o %F" in fake.calls


def test_submit_many_reads_the_job_id_from_sbatch_parsable(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("sbatch", "4243;cluster\n")
    tasks = [TaskDir(tmp_path / "runs" / n) for n in ("a", "b")]
    subs = SlurmBackend().submit_many([(tasks[0], 1), (tasks[1], 2)], batch="cr-8")
    assert [s.data["job_id"] for s in subs] == ["4243_0", "4243_1"]
    assert (tmp_path / "runs" / ".slurm" / "cr-8.jobid").read_text() == "4243\n"
    [call] = [c for c in fake.calls if c.startswith("sbatch")]
    assert "--parsable" in call and call.endswith("cr-8.sbatch")
