"""One writer per checkpoint directory, one runner per task, one claim per generation.

Each promise is tried under the event it is about, with real processes: a
second writer started beside a live one, a writer killed with -9, a writer
stopped (SIGSTOP) past its lease while a writer on another host (its own UTS
namespace) takes over, a second runner of a live task, and coordinators that
stop themselves between deciding and submitting while another one acts.
"""

from __future__ import annotations

import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from candle_restart.ckpt import CkptLayout, find_restart, read_ckpt_info
from candle_restart.coordinator import LocalBackend, Policy, resume, scan
from candle_restart.coordinator.resume import PAUSE_ENV
from candle_restart.task import TaskDir
from tests.faultfs.fixtures import unavailable
from tests.faultfs.host import host_command, second_host_unavailable
from tests.helpers import (
    ROOT,
    journal,
    preempted_task,
    report,
    runner_env,
    toy_task,
    trials,
    wait_for_pids,
)

LEASE = "1"  # seconds: every process of a test agrees on it (filelock refuses a mismatch)


def _env(**extra: str) -> dict[str, str]:
    return {**runner_env(), "CANDLE_RESTART_LEASE_SECONDS": LEASE, **extra}


def _other_host(cmd: list[str], name: str = "other-node") -> list[str]:
    """``cmd`` run in its own UTS namespace with host name ``name``: a second host on the same files."""
    reason = second_host_unavailable()
    if reason:
        unavailable(reason)
    return host_command(name, cmd)


def _writer(
    directory: Path, tag: str, *, epochs: int | None = None, host: str | None = None
) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.programs.lease_writer", str(directory), tag]
    if epochs is not None:
        cmd.append(str(epochs))
    return subprocess.Popen(
        _other_host(cmd, host) if host else cmd,
        cwd=ROOT,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _read_until(proc: subprocess.Popen[str], prefix: str, deadline: float = 60.0) -> list[str]:
    """Lines of ``proc``'s stdout up to and including the first that starts with ``prefix``."""
    assert proc.stdout is not None
    lines: list[str] = []
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if not sel.select(timeout=end - time.monotonic()):
                break
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith(prefix):
                return lines
    raise AssertionError(f"no line starting with {prefix!r} from pid {proc.pid}: {lines}")


def _check_every_checkpoint(directory: Path) -> dict[str, int]:
    """Every committed checkpoint is whole and from one writer; return checkpoints per writer."""
    layout = CkptLayout.at(directory)
    writers: dict[str, int] = {}
    for epoch in layout.list_epochs():
        path = layout.epoch_dir(epoch)
        metadata = read_ckpt_info(path / "ckpt-info.json").metadata
        payload = (path / "model.bin").read_bytes().decode()
        assert payload == f"{metadata} epoch {epoch}", f"mixed checkpoint {path}: {payload!r} {metadata}"
        writers[str(metadata)] = writers.get(str(metadata), 0) + 1
    found = find_restart(layout, True, lambda _m: None)
    assert found is not None and found.via == "last"
    return writers


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def _wait_stopped(pid: int, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not _stopped(pid):
        assert time.monotonic() < end, f"pid {pid} never stopped"
        time.sleep(0.02)  # polling a condition with a deadline


# ----- one writer per checkpoint directory ---------------------------------------------------
def test_a_second_writer_is_refused_before_it_touches_anything(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"
    first = _writer(directory, "first")
    _read_until(first, "committed 2")
    second = _writer(directory, "second")
    out, _err = second.communicate(timeout=60)
    first.kill()
    first.wait()
    assert second.returncode == 3, out
    [line] = out.splitlines()
    assert line.startswith(f"refused: {directory}: the checkpoint writer of {directory} is busy")
    assert f"pid {first.pid} since 20" in line and "host " in line
    assert _check_every_checkpoint(directory).keys() == {"first"}
    assert all(w.name.startswith(f"work-{first.pid}-") for w in CkptLayout.at(directory).work_dirs())
    report("second writer beside a live one", mixed_checkpoints=0, overlapping_runners=0)


def test_a_writer_killed_with_minus_9_is_taken_over_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"
    first = _writer(directory, "first")
    _read_until(first, "committed 3")
    first.kill()
    first.wait()
    newest = CkptLayout.at(directory).linked_epoch(CkptLayout.at(directory).last)
    assert newest is not None
    second = _writer(directory, "second", epochs=newest + 2)
    out, _err = second.communicate(timeout=60)
    assert second.returncode == 0, out
    assert out.splitlines()[0] == f"resumed {newest}"
    assert _check_every_checkpoint(directory)["second"] >= 1


def test_a_writer_stopped_past_its_lease_never_commits_again(tmp_path: Path) -> None:
    """SIGSTOP a writer at a random instant; another host takes the lease after it ran out and
    writes; the stopped one, continued, fails its next commit instead of publishing."""
    rng = random.Random(7)
    n = trials(3)
    mixed = late_commits = 0
    for trial in range(n):
        directory = tmp_path / f"trial-{trial}" / "ckpts"
        try:
            first = _writer(directory, "first")
            _read_until(first, f"committed {rng.randint(1, 4)}")
            time.sleep(rng.random() * 0.05)  # a random instant inside the write loop, not synchronisation
            first.send_signal(signal.SIGSTOP)
            _wait_stopped(first.pid)
            before = CkptLayout.at(directory).linked_epoch(CkptLayout.at(directory).last) or 0
            second = _writer(directory, "second", epochs=before + 3, host="other-node")
            out, _err = second.communicate(timeout=60)
            assert second.returncode == 0, out
            first.send_signal(signal.SIGCONT)
            rest, _err = first.communicate(timeout=60)
            # its work directory may have been cleared by the new writer: either way its commit fails
            late = [
                line
                for line in rest.splitlines()
                if line.startswith("committed") and int(line.split()[1]) > before
            ]
            late_commits += len(late)
            assert first.returncode == 4 and "lost: " in rest, rest
            try:
                writers = _check_every_checkpoint(directory)
            except AssertionError:
                mixed += 1
                raise
            assert writers.get("second", 0) >= 1
            assert CkptLayout.at(directory).linked_epoch(CkptLayout.at(directory).last) == before + 3
        finally:
            shutil.rmtree(directory.parent, ignore_errors=True)
    report("writer stopped past its lease", trials=n, mixed_checkpoints=mixed, late_commits=late_commits)
    assert late_commits == 0


# ----- one runner per task ---------------------------------------------------------------------
def test_a_second_runner_of_a_live_task_never_trains(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    task = toy_task(tmp_path / "run", "held", hold_fifo=str(gate))
    by_hand = subprocess.Popen(
        [sys.executable, "-m", "candle_restart.task", str(task.path)], cwd=ROOT, env=_env()
    )
    end = time.monotonic() + 60
    while not (task.ckpts / "last").is_symlink():  # epoch 1 committed: the toy now waits at the gate
        assert time.monotonic() < end and by_hand.poll() is None
        time.sleep(0.02)
    state_before = task.state_file.read_bytes()
    submitted = subprocess.run(
        [sys.executable, "-m", "candle_restart.task", str(task.path)],
        cwd=ROOT,
        env=_env(CANDLE_RESTART_GENERATION="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert submitted.returncode == 3, submitted.stderr
    assert f"the runner of task {task.task_id} is busy: host" in submitted.stderr
    assert f"pid {by_hand.pid}" in submitted.stderr
    assert task.state_file.read_bytes() == state_before
    with open(gate, "w") as g:
        g.write("go\n")
    assert by_hand.wait(timeout=60) == 0
    events = [e.kind for e in journal(task.path)]
    assert events.count("start") == 1 and events.count("run_refused") == 1
    finished, _ = TaskDir(task.path).load_state()
    assert finished is not None and finished.status == "completed"
    report("second runner of a live task", overlapping_runners=0)


# ----- one claim per generation -----------------------------------------------------------------
@pytest.mark.parametrize("point", ["decided", "intended"])
def test_a_coordinator_stopped_past_its_lease_never_submits_twice(tmp_path: Path, point: str) -> None:
    """A coordinator stops itself (test-only fail-point) between deciding and submitting; a second
    one breaks its lease and brings the task back; the first, continued, stands down."""
    n = trials(3)
    doubles = overlaps = 0
    for trial in range(n):
        root = tmp_path / f"run-{trial}"
        task = preempted_task(root, "paused")
        paused = subprocess.Popen(
            [sys.executable, "-m", "candle_restart.cli", "resume", str(root)],
            cwd=ROOT,
            env=_env(**{PAUSE_ENV: point}),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        _wait_stopped(paused.pid)
        backend = LocalBackend()
        policy = Policy(reconcile_grace=1.0, backoff_seconds=0.0)  # an abandoned intent counts as a failure
        end = time.monotonic() + 60
        while not any(e.kind == "submitted" for e in task.events()):
            assert time.monotonic() < end, task.events()
            resume(root, backend, policy, lease_seconds=float(LEASE))
            time.sleep(0.2)  # the next coordinator pass, as --watch would run it
        paused.send_signal(signal.SIGCONT)
        out, _ = paused.communicate(timeout=60)
        assert paused.returncode == 0, out
        assert "standing down" in out, out
        backend.wait_all()
        wait_for_pids(
            [e.pid for e in task.events() if e.kind == "start" and e.pid is not None and e.pid != os.getpid()]
        )
        events = task.events()
        submitted = [e.generation for e in events if e.kind == "submitted"]
        doubles += len(submitted) - len(set(submitted))
        overlaps += sum(1 for e in events if e.kind == "run_refused")
        assert scan(root, {"local": backend})[0].state == "completed"
    report(f"coordinator stopped at '{point}' past its lease", trials=n, double_submissions=doubles,
           overlapping_runners=overlaps)  # fmt: skip
    assert doubles == 0 and overlaps == 0
