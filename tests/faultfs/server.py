"""The fault filesystem's process: a FUSE passthrough over a backing directory, with faults.

Run as a module with the repository on ``PYTHONPATH`` (``control.py`` does)::

    python -m tests.faultfs.server BACKING MOUNTPOINT CONTROL_SOCKET [--cached] [--silly-rename] [--parent PID]

It mounts ``MOUNTPOINT`` in the foreground and serves until unmounted (``fusermount3 -u``) or sent
SIGTERM/SIGINT (libfuse then unmounts); with ``--parent`` it also gets SIGTERM when that process dies.
Every operation is passed through to the same path under ``BACKING`` (``rename`` with its
``renameat2`` flags, ``utimens`` with ``UTIME_NOW``/``UTIME_OMIT``, ``create`` with ``O_EXCL``),
so whatever the backing filesystem supports or refuses, the mount does too.

Faults are set while mounted through ``CONTROL_SOCKET``, a unix socket in the abstract namespace
(a name without a leading NUL): one JSON request a connection, one JSON reply (``{"ok": true, ...}``
or ``{"ok": false, "error": ...}``); a reply is sent only once the change is in effect. The client
is ``tests/faultfs/control.py``; the request kinds are in ``Faults.command``.

Caching is off by default (``direct_io``, attribute and entry timeouts 0), so every read, write and
stat of the tests reaches this process and can be failed, delayed or throttled.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import socket
import sys
import threading
from typing import Any

import mfusepy as fuse

from tests.faultfs.faults import Faults, oserror, recv_line

_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_PR_SET_PDEATHSIG = 1


def _c_check(result: int) -> None:
    if result != 0:
        raise oserror(ctypes.get_errno())


class Passthrough(fuse.Operations):
    """Every operation done on the same path under ``root``, after ``faults.check``."""

    use_ns = True

    def __init__(self, root: str, faults: Faults, control: str) -> None:
        self.root = os.path.realpath(root)
        self.faults = faults
        self.control = control

    def _full(self, path: str | None) -> str:
        if path is None:  # libfuse lost the name: the file was removed while open (hard_remove)
            raise oserror(errno.ESTALE)
        return os.path.join(self.root, path.lstrip("/"))

    def init(self, path: str) -> None:
        # The control socket exists only once the mount is serving: the client waits for it.
        threading.Thread(target=_serve_control, args=(self.control, self.faults), daemon=True).start()

    def access(self, path: str, amode: int) -> int:
        self.faults.check(("access",), path)
        if not os.access(self._full(path), amode, follow_symlinks=False):
            raise oserror(errno.EACCES)
        return 0

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        self.faults.check(("stat",), path)
        st = os.fstat(fh) if fh is not None else os.lstat(self._full(path))
        names = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks", "st_blksize")
        attrs: dict[str, Any] = {k: getattr(st, k) for k in names}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        attrs["st_rdev"] = st.st_rdev
        return attrs

    def readlink(self, path: str) -> str:
        self.faults.check(("readlink",), path)
        return os.readlink(self._full(path))

    def mknod(self, path: str, mode: int, dev: int) -> int:
        """FIFOs and device nodes (a FIFO's reads and writes are the kernel's, never seen here)."""
        self.faults.check(("mknod",), path)
        os.mknod(self._full(path), mode, dev)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self.faults.check(("mkdir",), path)
        os.mkdir(self._full(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        self.faults.check(("rmdir",), path)
        os.rmdir(self._full(path))
        return 0

    def unlink(self, path: str) -> int:
        self.faults.check(("unlink",), path)
        os.unlink(self._full(path))
        return 0

    def symlink(self, target: str, source: str) -> int:
        """Create the link ``target`` (a path in the mount) holding ``source`` (its text)."""
        self.faults.check(("symlink",), target)
        os.symlink(source, self._full(target))
        return 0

    def link(self, target: str, source: str) -> int:
        """Create the hard link ``target`` to the existing ``source``."""
        self.faults.check(("link",), target, source)
        os.link(self._full(source), self._full(target), follow_symlinks=False)
        return 0

    def rename(self, old: str, new: str) -> int:
        return self.rename2(old, new, 0)

    def rename2(self, old: str, new: str, flags: int) -> int:
        self.faults.check(("rename",), old, new)
        if flags == 0:
            os.rename(self._full(old), self._full(new))
        else:  # RENAME_NOREPLACE / RENAME_EXCHANGE: whatever the backing filesystem does with them
            _c_check(
                _libc.renameat2(
                    _AT_FDCWD, self._full(old).encode(), _AT_FDCWD, self._full(new).encode(), flags
                )
            )
        return 0

    def chmod(self, path: str, mode: int) -> int:
        self.faults.check(("chmod",), path)
        os.chmod(self._full(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self.faults.check(("chown",), path)
        os.chown(self._full(path), uid, gid, follow_symlinks=False)
        return 0

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        self.faults.check(("truncate",), path)
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._full(path), length)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        raise AssertionError("replaced by utimens_raw")  # registers the callback; _FUSE calls utimens_raw

    def utimens_raw(self, path: str | None, times: Any, fh: int | None) -> int:
        """Set times from the raw ``struct timespec[2]`` (``UTIME_NOW``/``UTIME_OMIT`` kept)."""
        self.faults.check(("utimens",), path)
        if fh is not None:
            _c_check(_libc.futimens(fh, times))
        else:
            _c_check(_libc.utimensat(_AT_FDCWD, self._full(path).encode(), times, _AT_SYMLINK_NOFOLLOW))
        return 0

    def open(self, path: str, flags: int) -> int:
        self.faults.check(("open",), path)
        return os.open(self._full(path), flags)

    def create(self, path: str, mode: int, flags: int) -> int:
        self.faults.check(("create", "open"), path)
        return os.open(self._full(path), flags | os.O_CREAT, mode)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        self.faults.check(("read",), path)
        data = os.pread(fh, size, offset)
        self.faults.transfer("read", len(data))
        return data

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        self.faults.check(("write",), path)
        n = self.faults.take_space(len(data))
        self.faults.transfer("write", n)
        return os.pwrite(fh, data[:n], offset)  # an O_APPEND descriptor appends atomically

    def flush(self, path: str | None, fh: int) -> int:
        self.faults.check(("flush",), path)
        os.close(os.dup(fh))  # close(2) of a duplicate: what the backing filesystem does on close
        return 0

    def release(self, path: str | None, fh: int) -> int:
        os.close(fh)  # never failed: the kernel ignores release errors, and the descriptor must go
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        self.faults.check(("fsync",), path)
        (os.fdatasync if datasync else os.fsync)(fh)
        return 0

    def opendir(self, path: str) -> int:
        self.faults.check(("readdir",), path)
        return os.open(self._full(path), os.O_RDONLY | os.O_DIRECTORY)

    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int], int]]:
        # Entries carry their inode numbers: with use_ino a 0 would hide them from readdir(3).
        full = self._full(path)
        out = []
        for name, where in ((".", full), ("..", os.path.dirname(full) if path != "/" else full)):
            st = os.lstat(where)
            out.append((name, {"st_ino": st.st_ino, "st_mode": st.st_mode}, 0))
        with os.scandir(full) as entries:
            for e in entries:
                mode = e.stat(follow_symlinks=False).st_mode
                out.append((e.name, {"st_ino": e.inode(), "st_mode": mode}, 0))
        return out

    def releasedir(self, path: str | None, fh: int) -> int:
        os.close(fh)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        self.faults.check(("fsync",), path)
        os.fsync(fh)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        self.faults.check(("statfs",), path)
        sv = os.statvfs(self._full(path))
        names = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail")
        out = {k: getattr(sv, k) for k in names}
        out["f_namemax"] = sv.f_namemax
        left = self.faults.space_left
        if left is not None:  # the ENOSPC budget is what is free
            out["f_bfree"] = out["f_bavail"] = min(sv.f_bavail, max(left, 0) // max(sv.f_frsize, 1))
        return out


class _FUSE(fuse.FUSE):
    """mfusepy's FUSE, passing ``rename`` flags and raw ``utimens`` times (mfusepy drops both)."""

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        return int(self.operations.rename2(old.decode(), new.decode(), flags))

    def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        fh = fip.contents.fh if fip else None
        return int(self.operations.utimens_raw(None if path is None else path.decode(), buf, fh))

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        fh = fip.contents.fh if fip else None
        return int(self.operations.truncate(None if path is None else path.decode(), length, fh))


def _serve_control(name: str, faults: Faults) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen(16)
    while True:
        conn, _ = server.accept()
        with conn:
            data = recv_line(conn)
            try:
                reply = faults.command(json.loads(data))
            except Exception as exc:  # a bad request is answered, never fatal
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            conn.sendall(json.dumps(reply).encode() + b"\n")


def main(argv: list[str]) -> int:
    if fuse.fuse_version_major != 3:
        sys.exit(
            f"faultfs needs libfuse3, mfusepy loaded libfuse {fuse.fuse_version_major} (set FUSE_LIBRARY_NAME=fuse3)"
        )
    backing, mountpoint, control = argv[:3]
    if "--parent" in argv:  # die with the test process, so no mount outlives it
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != int(argv[argv.index("--parent") + 1]):
            return 1
    options: dict[str, Any] = {
        "foreground": True,
        "fsname": "faultfs",
        "subtype": "faultfs",
        "allow_other": True,
        "default_permissions": True,
        "use_ino": True,
    }
    # A file removed while open: by default it is gone at once (its descriptors give ESTALE on
    # fstat, as on NFS when another client removed it); --silly-rename keeps it as .fuse_hidden*
    # until closed (as the NFS client that holds it open does with .nfs*).
    options["hard_remove"] = "--silly-rename" not in argv
    if "--cached" not in argv:
        options.update(direct_io=True, attr_timeout=0, entry_timeout=0, negative_timeout=0)
    _FUSE(Passthrough(backing, Faults(), control), mountpoint, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
