"""Mount the fault filesystem (``server.py``) in its own process and steer its faults from the tests.

    with mount_faultfs(tmp_path / "backing", tmp_path / "mnt") as fs:
        fs.fail("ckpts/epochs/003", "EIO", ops=["read", "open"], count=2)
        fs.throttle(write_bps=50e6)
        ...

Every control method returns once the change is in effect for the next operation on the mount.
``mount_faultfs`` always unmounts and ends the filesystem's process (by its PID) on the way out,
even when the body raises. ``fuse_unavailable()`` says why FUSE cannot be used here, or ``None``.
"""

from __future__ import annotations

import ctypes.util
import errno
import functools
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from tests.faultfs.faults import OPS, recv_line
from tests.helpers import ROOT  # the repository: tests.faultfs.server is importable from it


class FaultFSError(RuntimeError):
    """The fault filesystem could not be mounted or did not answer a control request."""


@functools.lru_cache(maxsize=1)
def fuse_unavailable() -> str | None:
    """Why a fault filesystem cannot be mounted here, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return f"FUSE fault filesystem needs Linux, not {sys.platform}"
    if not os.path.exists("/dev/fuse"):
        return (
            "no /dev/fuse (the fuse kernel module is not loaded, or the container does not expose the device)"
        )
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable by this user"
    if os.geteuid() != 0:
        return "mounting the fault filesystem needs root (it mounts with allow_other)"
    if shutil.which("fusermount3") is None:
        return "fusermount3 not found (Debian: apt-get install -y fuse3)"
    if ctypes.util.find_library("fuse3") is None:
        return "libfuse3 not found (Debian: apt-get install -y fuse3)"
    if importlib.util.find_spec("mfusepy") is None:
        return "the mfusepy package is not installed (it is in the test extra: pip install -e '.[test]')"
    return None


class FaultFS:
    """A mounted fault filesystem: ``mountpoint`` shows ``backing`` through the process ``pid``.

    ``ops`` name operations: access chmod chown create flush fsync link mkdir mknod open read readdir
    readlink rename rmdir stat statfs symlink truncate unlink utimens write, or ``*`` (all);
    ``open`` also covers creating opens, ``fsync`` also directories. Unknown names are refused.
    Paths given to the control methods are relative to the mount (``"ckpts/epochs/003"``) and match
    a path when they match it as a glob (``fnmatch``: ``*`` also crosses ``/``) or name it or one of
    its parent directories. For ``rename`` and ``link`` either path may match.
    """

    def __init__(self, backing: Path, mountpoint: Path, proc: subprocess.Popen[bytes], control: str) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        self.proc = proc
        self.pid = proc.pid
        self._control = control

    def path(self, relative: str | os.PathLike[str] = "") -> Path:
        """The path ``relative`` inside the mount."""
        return self.mountpoint / relative

    def request(self, **req: Any) -> dict[str, Any]:
        """Send one control request; its reply. Raises FaultFSError if refused or unanswered."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            try:
                sock.connect("\0" + self._control)
                sock.sendall(json.dumps(req).encode() + b"\n")
                data = recv_line(sock)
            except OSError as exc:
                raise FaultFSError(f"fault filesystem (pid {self.pid}) did not answer {req}: {exc}") from exc
        reply: dict[str, Any] = json.loads(data) if data else {"ok": False, "error": "no reply"}
        if not reply.get("ok"):
            raise FaultFSError(f"fault filesystem refused {req}: {reply.get('error')}")
        return reply

    def fail(
        self,
        pattern: str,
        error: int | str = errno.EIO,
        *,
        ops: Iterable[str] = ("*",),
        count: int | None = None,
        seconds: float | None = None,
        latency: float = 0.0,
    ) -> int:
        """Make ``ops`` on paths matching ``pattern`` fail with ``error`` (``"EIO"``, ``"EACCES"``,
        ``"ESTALE"``, ... or an errno); for ``count`` calls, for ``seconds``, or until cleared.
        Returns the rule's id for ``clear``. The first matching failure rule wins."""
        self._check_ops(ops)
        return int(
            self.request(
                kind="rule",
                pattern=pattern,
                ops=list(ops),
                errno=error,
                count=count,
                seconds=seconds,
                latency=latency,
            )["id"]
        )

    def delay(
        self,
        latency: float,
        pattern: str = "*",
        *,
        ops: Iterable[str] = ("*",),
        count: int | None = None,
        seconds: float | None = None,
    ) -> int:
        """Add ``latency`` seconds to each matching operation (latencies of matching rules add up).
        Returns the rule's id for ``clear``."""
        self._check_ops(ops)
        reply = self.request(
            kind="rule", pattern=pattern, ops=list(ops), latency=latency, count=count, seconds=seconds
        )
        return int(reply["id"])

    def clear(self, rule: int | None = None) -> None:
        """Remove one rule (by id), or every fail and delay rule."""
        self.request(kind="clear", id=rule)

    def throttle(self, *, read_bps: float | None = None, write_bps: float | None = None) -> None:
        """Limit read and write bandwidth to bytes/s, shared by all callers (``None``: unlimited)."""
        self.request(kind="throttle", read=read_bps, write=write_bps)

    def enospc_after(self, nbytes: int | None) -> None:
        """Let ``nbytes`` more bytes be written, then fail writes with ENOSPC (the write that crosses
        the limit is short); ``statfs`` reports the budget as free space. ``None`` lifts it."""
        self.request(kind="space", bytes=nbytes)

    def reset(self) -> None:
        """No rules, no throttle, no space limit."""
        self.request(kind="reset")

    def stats(self) -> dict[str, Any]:
        """``rules`` (each with ``hits`` and ``remaining``), ``calls`` per operation, ``bytes_read``,
        ``bytes_written``, ``space_left``, ``throttle``."""
        return self.request(kind="stats")

    @staticmethod
    def _check_ops(ops: Iterable[str]) -> None:
        unknown = sorted(set(ops) - OPS - {"*"})
        if unknown:
            raise ValueError(f"unknown operations {unknown}; known: {sorted(OPS)}")


def _is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


def _wait_until_serving(fs: FaultFS, timeout: float, log: IO[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if fs.proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise FaultFSError(f"fault filesystem exited with {fs.proc.returncode}: {err[-2000:]}")
        with suppress(FaultFSError):
            fs.request(kind="ping")
            if _is_mounted(fs.mountpoint):
                return
        if time.monotonic() > deadline:
            raise FaultFSError(f"fault filesystem (pid {fs.pid}) not serving after {timeout} s")
        time.sleep(0.02)


def _unmount(fs: FaultFS, timeout: float) -> None:
    """Unmount and end the process by its PID; escalate (lazy unmount, SIGTERM, SIGKILL) as needed."""
    mnt = str(fs.mountpoint)
    if _is_mounted(fs.mountpoint):
        done = subprocess.run(["fusermount3", "-u", mnt], capture_output=True, timeout=timeout)
        if done.returncode != 0 and fs.proc.poll() is None:
            # Busy (a descriptor or working directory still inside): end the server; libfuse
            # detaches the mount on its way out and what was left open gets ENOTCONN.
            fs.proc.send_signal(signal.SIGTERM)
    try:
        fs.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        fs.proc.kill()
        fs.proc.wait()
    if _is_mounted(fs.mountpoint):  # the process died without unmounting
        subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=timeout)


@contextmanager
def mount_faultfs(
    backing: Path,
    mountpoint: Path,
    *,
    cached: bool = False,
    silly_rename: bool = False,
    timeout: float = 30.0,
) -> Iterator[FaultFS]:
    """Mount ``backing`` (created if missing) on ``mountpoint`` (created, must be empty).

    ``cached=True`` lets the kernel cache pages and attributes (faster; reads and stats served from
    the cache never reach the faults). ``silly_rename=True`` keeps a file removed while open as
    ``.fuse_hidden*`` until closed (NFS's client-side behaviour); by default it is gone at once and
    its open descriptors answer ``fstat`` with ESTALE. Raises FaultFSError if it cannot mount.
    """
    backing.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    control = f"candle-restart-faultfs-{os.getpid()}-{secrets.token_hex(6)}"
    argv = [
        sys.executable,
        "-m",
        "tests.faultfs.server",
        str(backing),
        str(mountpoint),
        control,
        "--parent",
        str(os.getpid()),
    ]
    argv += ["--cached"] * cached + ["--silly-rename"] * silly_rename
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty server never blocks on it
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": pythonpath, "FUSE_LIBRARY_NAME": "fuse3"}  # not libfuse2
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        fs = FaultFS(backing, mountpoint, proc, control)
        try:
            _wait_until_serving(fs, timeout, log)
            yield fs
        finally:
            _unmount(fs, timeout)
