"""The commit protocol: publication, replacement, deletion and kill -9 at random instants."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptInfo, CkptLayout, commit, find_restart, verify_checkpoint
from candle_restart.ckpt.drain import Drainer
from candle_restart.records.ckptinfo import FileEntry
from candle_restart.runtime.lease import LeaseLost
from tests.helpers import ROOT, report, snapshot

CRASH_TRIALS = int(os.environ.get("CANDLE_RESTART_CRASH_TRIALS", "40"))


def _commit(layout: CkptLayout, epoch: int, data: bytes, best: bool = False) -> Path:
    work = commit.begin(layout)
    (work / "model.bin").write_bytes(data)
    info = CkptInfo(epoch, "model.bin", schema_version=1, files={"model.bin": FileEntry(len(data))})
    return commit.commit(layout, epoch, info, best=best)


def test_commit_publishes_whole_directory_and_swaps_links(tmp_path: Path) -> None:
    layout = CkptLayout.at(tmp_path)
    _commit(layout, 1, b"one", best=True)
    _commit(layout, 2, b"two")
    assert os.readlink(layout.last) == "epochs/002" and os.readlink(layout.best) == "epochs/001"
    assert (layout.last / "model.bin").read_bytes() == b"two"
    assert verify_checkpoint(layout.epoch_dir(2), True).epoch == 2


def test_begin_discards_debris_of_an_interrupted_write(tmp_path: Path) -> None:
    layout = CkptLayout.at(tmp_path)
    layout.work.mkdir(parents=True)
    (layout.work / "half-written").write_bytes(b"x")
    layout.epochs.mkdir()
    (layout.epochs / ".del-004-1-2").mkdir()
    work = commit.begin(layout)
    assert list(work.iterdir()) == [] and not (layout.epochs / ".del-004-1-2").exists()
    assert layout.list_epochs() == []


def _lost() -> None:
    raise LeaseLost("ckpts/.writer.lock", None, "the checkpoint writer: the lease was lost; not acting")


def _live_write(layout: CkptLayout) -> Path:
    """The work directory of a writer that holds the lease now (another host's), half-written."""
    work = layout.work_dir("4242-live")
    work.mkdir(parents=True)
    (work / "model.bin").write_bytes(b"half")
    return work


def test_begin_of_a_writer_that_lost_its_lease_deletes_nothing(tmp_path: Path) -> None:
    layout = CkptLayout.at(tmp_path)
    _commit(layout, 1, b"one")
    live = _live_write(layout)
    os.rename(layout.epoch_dir(1), layout.epochs / ".old-001-7-8")  # the live holder is replacing epoch 1
    before = snapshot(tmp_path, tmp_path / "none")
    with pytest.raises(commit.CommitError, match="lease was lost"):
        commit.begin(layout, layout.work_dir("1-stale"), fence=_lost)
    assert snapshot(tmp_path, tmp_path / "none") == before and (live / "model.bin").read_bytes() == b"half"


def test_begin_discards_only_what_was_there_before_its_fence(tmp_path: Path) -> None:
    """A work directory that appears after the listing (a holder that came after a pause right
    after the fence) is never deleted; the dead one listed before the fence is."""
    layout = CkptLayout.at(tmp_path)
    dead = layout.work_dir("1-dead")
    dead.mkdir(parents=True)
    (dead / "model.bin").write_bytes(b"dead")
    newcomer: list[Path] = []
    work = commit.begin(layout, layout.work_dir("2-mine"), fence=lambda: newcomer.append(_live_write(layout)))
    assert work.is_dir() and not dead.exists()
    assert (newcomer[0] / "model.bin").read_bytes() == b"half"


def test_a_drain_whose_lease_was_lost_deletes_nothing_on_the_shared_tier(tmp_path: Path) -> None:
    local, shared = CkptLayout.at(tmp_path / "local"), CkptLayout.at(tmp_path / "shared")
    _commit(local, 1, b"one")
    live = _live_write(shared)
    record = shared.root / "local-tier.json"  # the live holder's
    record.write_text('{"host": "node-b", "path": "/x", "epoch": 9, "time": "t", "drained": false}\n')
    before = record.read_bytes()
    lines: list[str] = []
    drainer = Drainer(
        local, shared, interval=1, keep_mode="linear", keep_limit=3, fence=_lost,
        log=lines.append, debug=lines.append, grace=10.0,
    )  # fmt: skip
    drainer.committed(1, must=True)
    drainer.join()
    assert (live / "model.bin").read_bytes() == b"half" and shared.work_dirs() == [live]
    assert shared.list_epochs() == [] and not shared.last.is_symlink() and record.read_bytes() == before
    assert any("copying epoch 1 to the shared tier failed" in line and "lease was lost" in line for line in lines)


def test_recommitting_an_epoch_replaces_it(tmp_path: Path) -> None:
    layout = CkptLayout.at(tmp_path)
    _commit(layout, 1, b"old")
    _commit(layout, 1, b"new")
    assert (layout.last / "model.bin").read_bytes() == b"new"
    assert [p.name for p in layout.epochs.iterdir()] == ["001"]


def test_remove_epoch_refuses_links_and_is_atomic(tmp_path: Path) -> None:
    layout = CkptLayout.at(tmp_path / "ckpts")
    _commit(layout, 1, b"x")
    victim = tmp_path / "victim"
    victim.mkdir()
    os.symlink(victim, layout.epochs / "007")
    assert not commit.remove_epoch(layout, 7) and victim.is_dir()
    assert commit.remove_epoch(layout, 1) and layout.list_epochs() == []
    assert not commit.remove_epoch(layout, 1)


def test_failed_commit_leaves_last_alone(tmp_path: Path) -> None:
    layout = CkptLayout.at(tmp_path)
    _commit(layout, 1, b"one")
    commit.begin(layout)
    (layout.work / "model.bin").write_bytes(b"two")

    def lost() -> None:
        raise commit.CommitError(str(layout.root), None, "the writer lease was lost")

    with pytest.raises(commit.CommitError, match=r"checkpoint commit failed: .*lease was lost"):
        commit.commit(layout, 2, CkptInfo(2, "model.bin"), best=False, fence=lost)
    assert os.readlink(layout.last) == "epochs/001" and layout.list_epochs() == [1]


def _writer(directory: Path, seed: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.programs.crash_writer", str(directory), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_kill_minus_9_at_random_instants_never_exposes_a_partial_checkpoint(tmp_path: Path) -> None:
    """Each trial: let the writer commit, SIGKILL it at a random instant, check, resume."""
    rng = random.Random(1234)
    directory = tmp_path / "ckpts"
    layout = CkptLayout.at(directory)
    partial_loads = lost_commits = 0
    for trial in range(CRASH_TRIALS):
        proc = _writer(directory, trial)
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("resumed")
        first = proc.stdout.readline()  # at least one commit in this trial
        assert first.startswith("committed"), first
        time.sleep(rng.uniform(0, 0.05))  # the random instant of the kill, not synchronisation
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        committed = [
            int(line.split()[1]) for line in (first + rest).splitlines() if line.startswith("committed")
        ]
        found = find_restart(layout, True, lambda _msg: None)
        if found is None or found.via != "last":
            partial_loads += 1
        elif found.epoch < committed[-1]:
            lost_commits += 1
    report(
        "kill -9 of a checkpoint writer",
        trials=CRASH_TRIALS,
        partial_loads=partial_loads,
        lost_commits=lost_commits,
    )
    assert (partial_loads, lost_commits) == (0, 0)


def _held() -> None:
    pass


@pytest.mark.parametrize(
    ("exc", "fence", "said"),
    [
        (FileNotFoundError(2, "No such file or directory"), _lost, "the lease was lost"),  # its work dir went
        (FileNotFoundError(2, "No such file or directory"), _held, "No such file or directory"),
        (OSError(28, "No space left on device"), _held, "No space left on device"),
        (LeaseLost("x", None, "the lease is not held"), _lost, "the lease is not held"),  # itself the cause
    ],
)
def test_a_failed_write_is_told_by_its_lost_lease_where_the_fence_fails(
    exc: BaseException, fence: commit.Fence, said: str
) -> None:
    assert said in commit.why_failed(exc, fence)
