"""A writer stopped past its lease, continued while the new holder is in the middle of a write.

The old writer (this host) stops itself (SIGSTOP) at a deterministic point: right before
its next checkpoint begins, half-way through writing one, or (two tiers) right before its
drain to the shared tier begins, or half-way through a stop's checkpoint written straight
to the shared tier.  Its lease runs out; a
writer on another host (its own UTS namespace) takes the lease over and holds half-way
through writing a checkpoint of its own.  Then the old writer is continued: it must fail
its fence without touching anything of the new holder's (before the fix, its `begin`
deleted the new holder's work directory, and so did the drain's), and the new holder, released, must finish
and commit.  No timing decides the interleaving: both writers wait at their points.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from candle_restart.ckpt import CkptLayout, find_restart, read_ckpt_info
from tests.faultfs.host import Host
from tests.helpers import ROOT, read_until, report, runner_env, trials, wait_stopped

LEASE = "1"  # seconds: every process of a test agrees on it (filelock refuses a mismatch)


POINTS = ("stop-before", "stop-inside", "stop-drain", "stop-direct")


def _writer(
    directory: Path,
    tag: str,
    point: str,
    *,
    epochs: int | None = None,
    host: Host | None = None,
    local: Path | None = None,
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.programs.lease_writer", str(directory), tag, str(epochs or "-"), point]
    argv += [str(local)] if local else []
    popen = {
        "cwd": ROOT,
        "env": {**runner_env(), "CANDLE_RESTART_LEASE_SECONDS": LEASE},
        "text": True,
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
    }
    return host.spawn(argv, **popen) if host else subprocess.Popen(argv, **popen)  # type: ignore[call-overload]


def _whole_checkpoints(layout: CkptLayout) -> dict[int, str]:
    """Each committed checkpoint's writer; AssertionError for one whose model is not its writer's."""
    writers = {}
    for epoch in layout.list_epochs():
        path = layout.epoch_dir(epoch)
        tag = str(read_ckpt_info(path / "ckpt-info.json").metadata)
        payload = (path / "model.bin").read_bytes().decode()
        assert payload == f"{tag} epoch {epoch}", f"mixed checkpoint {path}: {payload!r} {tag}"
        writers[epoch] = tag
    return writers


def test_a_stopped_writer_continued_during_a_live_write_destroys_nothing(
    tmp_path: Path, second_host: Host
) -> None:
    rng = random.Random(27)
    n = trials(len(POINTS))
    destroyed = legit_failed = late_commits = mixed = lost = 0
    for trial in range(n):
        directory = tmp_path / f"trial-{trial}" / "ckpts"
        layout = CkptLayout.at(directory)
        where = POINTS[trial] if trial < len(POINTS) else rng.choice(POINTS)
        at = rng.randint(2, 4)
        local = directory.parent / "local" if where in ("stop-drain", "stop-direct") else None
        old = _writer(directory, "old", f"{where}:{at}", local=local)
        procs = [old]
        try:
            read_until(old, "stopping")
            wait_stopped(old.pid)
            before = layout.linked_epoch(layout.last) or 0
            assert before == at - 1 or (local and before < at), (where, at, before)
            hold = before + rng.randint(1, 2)
            new = _writer(directory, "new", f"hold-inside:{hold}", epochs=before + 3, host=second_host)
            procs.append(new)
            read_until(new, f"holding {hold}")  # the lease ran out and was taken over: new writes
            [work] = [w for w in layout.work_dirs() if w.name.startswith(f"work-{new.pid}-")]
            old.send_signal(signal.SIGCONT)
            rest, old_err = old.communicate(timeout=60)
            late = [ln for ln in rest.splitlines() if ln.startswith("committed") and not local]
            intact = (work / "model.bin").is_file()
            destroyed += not intact
            assert new.stdin is not None
            new.stdin.write("go\n")
            new.stdin.flush()
            out, err = new.communicate(timeout=60)
            legit_failed += new.returncode != 0
            try:
                writers = _whole_checkpoints(layout)
            except AssertionError:
                mixed += 1
                raise
            late += [f"epochs/{e:03d}" for e, w in writers.items() if e > before and w == "old"]
            late_commits += len(late)
            found = find_restart(layout, True, lambda _m: None)
            lost += found is None or found.epoch != before + 3 or writers.get(found.epoch) != "new"
            assert old.returncode == 4 and "lost: " in rest and not late, rest + old_err  # it failed its fence
            assert "the lease was lost" in rest, rest  # and says why (not "no such file": its work dir went)
            assert intact, f"the stopped writer deleted the new holder's {work.name}/"
            assert new.returncode == 0, out + err  # the legitimate writer did not fail
            assert found is not None and found.via == "last" and found.epoch == before + 3
            assert {e: w for e, w in writers.items() if e > before} == {
                e: "new" for e in range(before + 1, before + 4) if e in writers
            }
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            shutil.rmtree(directory.parent, ignore_errors=True)
    report(
        "writer stopped past its lease, continued during a live write",
        trials=n,
        mixed_checkpoints=mixed,
        late_commits=late_commits,
        lost=lost,
        destroyed_live_writes=destroyed,
        legitimate_writers_failed=legit_failed,
    )
    assert destroyed == legit_failed == late_commits == mixed == lost == 0
