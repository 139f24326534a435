"""Self-tests of the fault filesystem and the second host (``tests/faultfs``): the passthrough is
faithful, each fault comes and goes as asked, and a filelock lease held on the mount by one host is
taken by another only after the holder died and its lease ran out."""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faultfs import FaultFS, Host, fuse_unavailable, mount_faultfs
from tests.faultfs.control import _is_mounted
from tests.faultfs.fixtures import unavailable
from tests.helpers import ROOT, report

_libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def _renameat2(old: Path, new: Path, flags: int) -> int:
    """0, or the errno of renameat2(2)."""
    if _libc.renameat2(-100, str(old).encode(), -100, str(new).encode(), flags) == 0:
        return 0
    return ctypes.get_errno()


def test_passthrough_is_faithful(faultfs: FaultFS) -> None:
    m, b = faultfs.mountpoint, faultfs.backing
    (m / "d").mkdir()
    (m / "d" / "f").write_bytes(b"one")
    assert (b / "d" / "f").read_bytes() == b"one"  # it is the backing directory
    with open(m / "d" / "f", "ab") as f:
        f.write(b"two")
        f.flush()
        os.fsync(f.fileno())
    assert (m / "d" / "f").read_bytes() == b"onetwo"
    dfd = os.open(m / "d", os.O_RDONLY | os.O_DIRECTORY)  # directories are fsynced by the commit protocol
    os.fsync(dfd)
    os.close(dfd)

    fd = os.open(m / "d" / "x", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    os.close(fd)
    with pytest.raises(FileExistsError):
        os.open(m / "d" / "x", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    assert (m / "d" / "x").stat().st_mode & 0o777 == 0o640

    os.link(m / "d" / "f", m / "d" / "hard")
    st1, st2 = os.stat(m / "d" / "f"), os.stat(m / "d" / "hard")
    assert st1.st_ino == st2.st_ino == os.stat(b / "d" / "f").st_ino and st1.st_nlink == 2
    with pytest.raises(FileExistsError):
        os.link(m / "d" / "f", m / "d" / "x")

    os.symlink("d/f", m / "last")
    assert os.readlink(m / "last") == "d/f" and (m / "last").read_bytes() == b"onetwo"
    os.symlink("d/x", m / "last.tmp")
    os.replace(m / "last.tmp", m / "last")  # the atomic link swap of the commit protocol
    assert os.readlink(m / "last") == "d/x"

    (m / "d" / "x").write_bytes(b"new")
    os.rename(m / "d" / "x", m / "d" / "f")  # replaces
    assert (m / "d" / "f").read_bytes() == b"new" and not (m / "d" / "x").exists()
    (m / "d" / "x").write_bytes(b"other")
    assert _renameat2(m / "d" / "x", m / "d" / "f", RENAME_NOREPLACE) == errno.EEXIST
    code = _renameat2(m / "d" / "x", m / "d" / "f", RENAME_EXCHANGE)
    if code == 0:  # the backing filesystem swaps; otherwise the caller must see a refusal to fall back on
        assert (m / "d" / "f").read_bytes() == b"other" and (m / "d" / "x").read_bytes() == b"new"
    else:
        assert code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)

    os.utime(m / "d" / "f", ns=(1_000_000_123, 2_000_000_456))
    assert os.stat(m / "d" / "f").st_mtime_ns == 2_000_000_456
    os.utime(m / "d" / "f")  # UTIME_NOW
    assert os.stat(m / "d" / "f").st_mtime_ns > 2_000_000_456
    os.truncate(m / "d" / "f", 1)
    assert (m / "d" / "f").stat().st_size == (b / "d" / "f").stat().st_size == 1
    os.chmod(m / "d" / "f", 0o600)
    assert (b / "d" / "f").stat().st_mode & 0o777 == 0o600
    assert os.statvfs(m).f_blocks == os.statvfs(b).f_blocks

    with open(m / "d" / "gone", "w+b") as f:  # removed while open: the descriptor still works
        os.unlink(m / "d" / "gone")
        f.write(b"abc")
        f.flush()
        f.seek(0)
        assert f.read() == b"abc"
        with pytest.raises(OSError) as err:  # as on NFS when another client removed it
            os.fstat(f.fileno())
        assert err.value.errno == errno.ESTALE

    assert sorted(os.listdir(m / "d")) == sorted(os.listdir(b / "d")) == ["f", "hard", "x"]
    with pytest.raises(OSError) as err:
        os.rmdir(m / "d")
    assert err.value.errno == errno.ENOTEMPTY
    for name in ("f", "hard", "x"):
        os.unlink(m / "d" / name)
    os.rmdir(m / "d")
    assert not (b / "d").exists()


def _operations(m: Path) -> dict[str, Callable[[], object]]:
    """One call of each operation on ``m/t/...``, all of which succeed without faults."""

    def write() -> None:
        fd = os.open(m / "t" / "f", os.O_WRONLY)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)

    def fsync() -> None:
        fd = os.open(m / "t" / "f", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    return {
        "open": lambda: os.close(os.open(m / "t" / "f", os.O_RDONLY)),
        "create": lambda: os.close(os.open(m / "t" / "new", os.O_WRONLY | os.O_CREAT | os.O_EXCL)),
        "read": lambda: (m / "t" / "f").read_bytes(),
        "write": write,
        "fsync": fsync,
        "stat": lambda: os.stat(m / "t" / "f"),
        "rename": lambda: os.rename(m / "t" / "victim", m / "t" / "moved"),
        "link": lambda: os.link(m / "t" / "f", m / "t" / "hard"),
        "symlink": lambda: os.symlink("f", m / "t" / "sym"),
        "readlink": lambda: os.readlink(m / "t" / "link"),
        "mkdir": lambda: os.mkdir(m / "t" / "sub"),
        "mknod": lambda: os.mkfifo(m / "t" / "fifo"),
        "rmdir": lambda: os.rmdir(m / "t" / "empty"),
        "unlink": lambda: os.unlink(m / "t" / "victim"),
        "utimens": lambda: os.utime(m / "t" / "f"),
        "truncate": lambda: os.truncate(m / "t" / "f", 0),
        "chmod": lambda: os.chmod(m / "t" / "f", 0o644),
        "statfs": lambda: os.statvfs(m / "t"),
        "readdir": lambda: os.listdir(m / "t"),
    }


def _fresh(m: Path) -> None:
    for name in ("new", "hard", "sym", "moved", "fifo"):
        (m / "t" / name).unlink(missing_ok=True)
    for name in ("sub", "empty"):
        if (m / "t" / name).exists():
            os.rmdir(m / "t" / name)
    (m / "t" / "empty").mkdir()
    (m / "t" / "victim").touch()


def _errno_of(call: Callable[[], object]) -> int:
    try:
        call()
    except OSError as exc:
        return exc.errno or -1
    return 0


def test_each_fault_fails_its_operation_until_cleared(faultfs: FaultFS) -> None:
    m = faultfs.mountpoint
    (m / "t").mkdir()
    (m / "t" / "f").write_bytes(b"data")
    os.symlink("f", m / "t" / "link")
    ops = _operations(m)
    for op, call in ops.items():
        for code in ("EIO", "EACCES", "ESTALE"):
            _fresh(m)
            rule = faultfs.fail("t", code, ops=[op])  # a prefix: the directory and all below it
            assert _errno_of(call) == getattr(errno, code), (op, code)
            faultfs.clear(rule)
            assert _errno_of(call) == 0, (op, code)
    report("faultfs_each_fault", operations=len(ops), errnos=3)


def test_faults_by_count_glob_time_and_latency(faultfs: FaultFS) -> None:
    m = faultfs.mountpoint
    (m / "epochs" / "003").mkdir(parents=True)
    (m / "epochs" / "003" / "model.keras").write_bytes(b"m")
    (m / "epochs" / "003" / "ckpt-info.json").write_bytes(b"{}")
    faultfs.fail("epochs/*/model.keras", "EIO", ops=["open"], count=2)
    results = [_errno_of((m / "epochs" / "003" / "model.keras").read_bytes) for _ in range(3)]
    assert results == [errno.EIO, errno.EIO, 0]
    assert (m / "epochs" / "003" / "ckpt-info.json").read_bytes() == b"{}"  # other paths untouched
    assert faultfs.stats()["rules"][0]["hits"] == 2

    faultfs.fail("epochs/003", "ESTALE", ops=["stat", "open"], seconds=1.0)  # comes and goes by itself
    assert _errno_of(lambda: os.stat(m / "epochs" / "003" / "model.keras")) == errno.ESTALE
    deadline = time.monotonic() + 30
    while _errno_of(lambda: os.stat(m / "epochs" / "003" / "model.keras")):
        assert time.monotonic() < deadline, "the timed fault never cleared"
        time.sleep(0.02)

    faultfs.delay(0.2, "epochs", ops=["stat"])
    start = time.monotonic()
    os.stat(m / "epochs" / "003")
    slow = time.monotonic() - start
    assert slow >= 0.2 * 0.5
    faultfs.reset()
    with pytest.raises(ValueError, match="unknown operations"):
        faultfs.fail("x", ops=["reed"])
    report("faultfs_timed", delayed_stat_s=round(slow, 3))


def test_throttled_bandwidth(faultfs: FaultFS) -> None:
    n, rate = 2_000_000, 4_000_000.0
    data = os.urandom(n)
    faultfs.throttle(read_bps=rate, write_bps=rate)
    start = time.monotonic()
    with open(faultfs.path("big"), "wb") as f:
        f.write(data)
    wrote = time.monotonic() - start
    start = time.monotonic()
    assert faultfs.path("big").read_bytes() == data
    read = time.monotonic() - start
    faultfs.throttle()
    start = time.monotonic()
    faultfs.path("big").read_bytes()
    free = time.monotonic() - start
    assert wrote >= n / rate * 0.5 and read >= n / rate * 0.5  # lower bounds only: never flaky
    report(
        "faultfs_throttle",
        limit_bps=rate,
        write_bps=round(n / wrote),
        read_bps=round(n / read),
        unthrottled_read_bps=round(n / free),
    )


def test_enospc_after_a_byte_budget(faultfs: FaultFS) -> None:
    faultfs.enospc_after(100_000)
    sv = os.statvfs(faultfs.mountpoint)
    assert sv.f_bavail * sv.f_frsize <= 100_000
    fd = os.open(faultfs.path("f"), os.O_WRONLY | os.O_CREAT)
    written, chunk = 0, b"z" * 65536
    try:
        while True:
            written += os.write(fd, chunk)  # the write that crosses the budget is short
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    assert written == 100_000 == faultfs.backing.joinpath("f").stat().st_size
    faultfs.enospc_after(None)
    with open(faultfs.path("f"), "ab") as f:
        f.write(chunk)
    assert faultfs.path("f").stat().st_size == 100_000 + len(chunk)


def test_unmounted_and_ended_even_when_the_body_fails(tmp_path: Path) -> None:
    reason = fuse_unavailable()
    if reason:
        unavailable(reason)
    with pytest.raises(RuntimeError, match="boom"), mount_faultfs(tmp_path / "b", tmp_path / "m") as fs:
        busy = open(fs.path("open-at-exit"), "w")  # noqa: SIM115 - held open across the unmount
        raise RuntimeError("boom")
    with pytest.raises(OSError) as err:  # the mount went away under it
        busy.close()
    assert err.value.errno == errno.ENOTCONN
    assert fs.proc.poll() is not None and not _is_mounted(fs.mountpoint)
    with mount_faultfs(tmp_path / "b2", tmp_path / "m2", silly_rename=True) as fs:
        with open(fs.path("gone"), "w") as f:  # NFS's own client keeps a removed open file as .nfs*
            os.unlink(fs.path("gone"))
            assert os.fstat(f.fileno()).st_nlink >= 0
            assert [n for n in os.listdir(fs.mountpoint) if n.startswith(".fuse_hidden")]
        assert os.listdir(fs.mountpoint) == []


def _readline(proc: subprocess.Popen[str], deadline: float) -> str:
    """The next line of ``proc``'s stdout; fails at the deadline or if it ends first."""
    assert proc.stdout is not None
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no line from the child before the deadline"
        if select.select([proc.stdout], [], [], left)[0]:
            line = proc.stdout.readline()
            assert line, f"child exited with {proc.wait()}"
            return line.strip()


def test_second_host_has_its_own_name_and_shares_pids(second_host: Host) -> None:
    code = (
        "import os, socket, sys; "
        "print(socket.gethostname(), os.getpid(), os.path.exists(f'/proc/{sys.argv[1]}'), flush=True); "
        "sys.stdin.readline()"
    )
    proc = second_host.python(
        code, str(os.getpid()), stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True
    )
    name, pid, sees_us = _readline(proc, time.monotonic() + 60).split()
    assert name == "node-b" != socket.gethostname()
    assert int(pid) == proc.pid and sees_us == "True"  # one PID namespace: unlike real hosts
    os.kill(proc.pid, 0)
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


HOLDER = """
import sys, threading
from filelock import SoftFileLease
lease = SoftFileLease(sys.argv[1], lease_duration=float(sys.argv[2]),
                      on_compromise=lambda c: print("compromised", c, flush=True))
lease.acquire(timeout=60)
print("held", flush=True)
threading.Event().wait()  # hold until killed
"""
CONTENDER = """
import socket, sys, time
from filelock import SoftFileLease
lease = SoftFileLease(sys.argv[1], lease_duration=float(sys.argv[2]))
print("trying", flush=True)
lease.acquire(timeout=120)
print("acquired", repr(time.time()), socket.gethostname(), flush=True)
lease.release()
"""


def test_lease_is_taken_by_another_host_only_after_the_holder_died_and_it_expired(
    faultfs: FaultFS, second_host: Host
) -> None:
    duration = 2.5  # a loaded machine stalls the heartbeat thread for a second at times
    lock, marker = faultfs.path("task.lock"), faultfs.backing / "task.lock"
    popen: dict[str, Any] = {"stdout": subprocess.PIPE, "text": True}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(duration)], **popen)
    try:
        assert _readline(holder, time.monotonic() + 60) == "held"
        contender = second_host.python(CONTENDER, str(lock), str(duration), **popen)
        assert _readline(contender, time.monotonic() + 60) == "trying"
        # The holder lives for two lease durations while the other host tries: it must not get the lease.
        out, alive_until = contender.stdout, time.monotonic() + 2 * duration
        assert out is not None
        while time.monotonic() < alive_until:
            assert not select.select([out], [], [], max(0.0, alive_until - time.monotonic()))[0], (
                f"the other host took the lease from a live holder, or failed: {out.readline()!r}"
            )
        ino = marker.stat().st_ino
        killed_at = time.time()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        last = marker.stat()  # the holder's last heartbeat (takeover cannot come this fast)
        assert last.st_ino == ino
        word, acquired_at, host = _readline(contender, time.monotonic() + 120).split()
        assert word == "acquired" and host == "node-b"
        acquired = float(acquired_at)
        assert acquired > killed_at
        assert acquired >= last.st_mtime_ns / 1e9 + duration  # coarse mtimes are early: a safe bound
        assert contender.wait(timeout=60) == 0
        assert holder.stdout is not None and "compromised" not in holder.stdout.read()
        report(
            "faultfs_lease_takeover",
            lease_s=duration,
            taken_after_kill_s=round(acquired - killed_at, 3),
            taken_after_last_heartbeat_s=round(acquired - last.st_mtime_ns / 1e9, 3),
        )
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an orphan's reaper may be slow or absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


MOUNTER = """
import sys, threading
from pathlib import Path
from tests.faultfs import mount_faultfs
with mount_faultfs(Path(sys.argv[1]), Path(sys.argv[2])) as fs:
    print(fs.pid, flush=True)
    threading.Event().wait()  # until killed
"""


def test_no_mount_outlives_a_killed_test_process(tmp_path: Path) -> None:
    reason = fuse_unavailable()
    if reason:
        unavailable(reason)
    mnt = tmp_path / "m"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", MOUNTER, str(tmp_path / "b"), str(mnt)]
    mounter = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        server = int(_readline(mounter, time.monotonic() + 60))
        assert _is_mounted(mnt)
    finally:
        mounter.kill()  # SIGKILL: no teardown runs in it
        mounter.wait()
    deadline = time.monotonic() + 60
    while _is_mounted(mnt) or _running(server):  # the server is told by PDEATHSIG
        assert time.monotonic() < deadline, "the fault filesystem outlived the process that mounted it"
        time.sleep(0.02)
