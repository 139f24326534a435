"""Two checkpoint tiers, with the writer in a process of its own: real SIGKILL and SIGTERM.

The writer is tests/programs/tier_writer.py, through the core's `CandleCkpt` with the bytes
backend of tests/helpers; real files and real signals.  Whatever instant a kill lands at, the
shared ``last`` names a whole, verified checkpoint and never goes back, and the next run resumes
from the newest whole checkpoint of either tier.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, find_restart, verify_checkpoint
from candle_restart.ckpt.drain import local_root
from candle_restart.cli import main as cli_main
from candle_restart.records.localtier import describe_local_tier, progress_of
from tests.helpers import ROOT, report, trials


def _shared(tmp_path: Path) -> CkptLayout:
    return CkptLayout.at(tmp_path / "shared")


@contextmanager
def _writer(tmp_path: Path, seed: int, mode: str, megabytes: float) -> Iterator[subprocess.Popen[str]]:
    """tests/programs/tier_writer.py in a child process; killed (by its PID) if the test leaves it running."""
    argv = [str(tmp_path / "shared"), str(tmp_path / "local"), str(seed), mode, str(megabytes)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.programs.tier_writer", *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _unverified(shared: CkptLayout) -> int:
    """How many checkpoints under the shared ``epochs/`` fail their verification."""
    bad = 0
    for epoch in shared.list_epochs():
        try:
            verify_checkpoint(shared.epoch_dir(epoch), True)
        except Exception:
            bad += 1
    return bad


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str]) -> bool:
    """Poll ``condition`` until it holds; False if ``proc`` ended (or a minute passed) first."""
    deadline = time.monotonic() + 60
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.001)  # polling an observable state: the condition is checked, not assumed
    return True


def test_kill_minus_9_during_a_drain_never_moves_shared_last_onto_a_partial_copy(tmp_path: Path) -> None:
    """Each trial: wait for a drain of a big checkpoint to begin, SIGKILL at a random instant in it,
    check the shared tier, resume (from the node-local tier when it is newer)."""
    rng = random.Random(4321)
    shared = _shared(tmp_path)
    partial_last = bad_epochs = went_back = mid_copy = 0
    newest = 0
    count = trials(8)
    for trial in range(count):
        with _writer(tmp_path, trial, "crash", 24) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("resumed")
            # A drain published in this trial, and the next one began writing into the shared tier.
            before = shared.linked_epoch(shared.last)

            def published(before: int | None = before) -> bool:
                return shared.linked_epoch(shared.last) not in (None, before)

            assert _wait_for(published, proc)
            assert _wait_for(lambda: bool(shared.work_dirs()), proc), "the writer ended before draining"
            time.sleep(rng.uniform(0, 0.08))  # the random instant of the kill, not synchronisation
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        mid_copy += any(any(d.iterdir()) for d in shared.work_dirs())
        found = find_restart(shared, True, lambda _msg: None)
        if found is None or found.via != "last":
            partial_last += 1
            continue
        bad_epochs += _unverified(shared)
        went_back += found.epoch < newest
        newest = max(newest, found.epoch)
    report(
        "kill -9 during a drain",
        trials=count,
        partial_last=partial_last,
        bad_epochs=bad_epochs,
        mid_copy=mid_copy,
    )
    assert (partial_last, bad_epochs, went_back) == (0, 0, 0)
    assert mid_copy >= 1, "no kill landed inside a copy: the test did not test the drain"


def test_sigterm_exits_75_only_once_the_preemption_checkpoint_is_on_the_shared_tier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _writer(tmp_path, 7, "preempt", 16) as proc:
        assert proc.stdout is not None
        line = ""
        while line != "committed 1\n":  # the log's first lines and "resumed 0" come first
            line = proc.stdout.readline()
            assert line, "the writer ended before its first checkpoint"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate()
    assert proc.returncode == 75
    preempted = [int(line.split()[1]) for line in out.splitlines() if line.startswith("preempted")]
    assert len(preempted) == 1
    shared = _shared(tmp_path)
    # The drain interval (1000) drains nothing on its own: this checkpoint is the preemption's.
    assert shared.linked_epoch(shared.last) == preempted[0]
    log = (shared.root / "ckpt.log").read_text()
    assert "grace period" in log and "after SIGTERM" in log
    # The stop's checkpoint was committed on the shared tier itself: nothing newer is only node-local.
    info = verify_checkpoint(shared.epoch_dir(preempted[0]), True)
    assert describe_local_tier(shared.root, progress_of(preempted[0], info)) is None
    assert cli_main(["ckpt", str(shared.root)]) == 0
    assert "only node-local" not in capsys.readouterr().out  # the record still names an older one


def _writing(shared: CkptLayout, pid: int) -> bool:
    """``pid``'s own work directory on the shared tier holds a file (its write is under way)."""
    for work in shared.work_dirs():
        if work.name.startswith(f"work-{pid}-"):
            try:
                return any(work.iterdir())
            except FileNotFoundError:  # just renamed into epochs/: the commit is done
                return False
    return False


def test_kill_minus_9_during_the_stops_direct_commit_leaves_the_shared_tier_whole(tmp_path: Path) -> None:
    """Each trial: a writer's stop takes its checkpoint straight onto the shared tier; SIGKILL at a
    random instant of that write.  The shared ``last`` is whole and never goes back, the next trial
    resumes from the newest whole checkpoint, and a stop that is left alone exits 75 with its
    checkpoint on the shared tier and no dead writer's work directory behind it."""
    rng = random.Random(2718)
    shared = _shared(tmp_path)
    bad_last = bad_epochs = went_back = mid_write = 0
    newest = 0  # the newest checkpoint known whole on the shared tier after a trial
    count = trials(6)
    for trial in range(count):
        with _writer(tmp_path, trial, "direct", 16) as proc:
            assert proc.stdout is not None
            resumed = int(proc.stdout.readline().split()[1])
            went_back += resumed < newest
            assert proc.stdout.readline() == f"committed {resumed + 1}\n"
            assert proc.stdout.readline() == f"stopping {resumed + 2}\n"
            assert _wait_for(lambda: _writing(shared, proc.pid), proc), (
                "the writer ended before its stop's write"
            )
            time.sleep(rng.uniform(0, 0.03))  # the random instant of the kill, not synchronisation
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        mid_write += _writing(shared, proc.pid)
        found = find_restart(shared, True, lambda _msg: None)
        if found is None or found.via != "last" or found.epoch not in (resumed + 1, resumed + 2):
            bad_last += 1
            continue
        bad_epochs += _unverified(shared)
        newest = found.epoch
    report(
        "kill -9 during the stop's direct commit",
        trials=count,
        bad_last=bad_last,
        bad_epochs=bad_epochs,
        mid_write=mid_write,
    )
    assert (bad_last, bad_epochs, went_back) == (0, 0, 0)
    assert mid_write >= 1, "no kill landed inside the stop's write: the test did not test it"

    with _writer(tmp_path, count, "direct", 16) as proc:  # left alone this time
        out, _ = proc.communicate()
    assert proc.returncode == 75
    resumed = int(out.split()[1])
    assert resumed >= newest and f"preempted {resumed + 2}" in out
    assert shared.linked_epoch(shared.last) == resumed + 2
    local = CkptLayout.at(local_root(tmp_path / "local", shared.root))
    assert resumed + 1 in local.list_epochs() and resumed + 2 not in local.list_epochs()  # direct
    assert shared.work_dirs() == []  # the dead writers' work directories went with the first commit
