"""The fault filesystem's fault state: rules (fail and/or delay), bandwidth limits, a space budget.

Used by ``server.py`` in the filesystem's process; ``OPS`` is what a rule may name. Thread-safe.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

OPS = frozenset(
    {
        *("access", "chmod", "chown", "create", "flush", "fsync", "link", "mkdir", "mknod", "open", "read"),
        *("readdir", "readlink", "rename", "rmdir", "stat", "statfs", "symlink", "truncate", "unlink"),
        *("utimens", "write"),
    }
)


def oserror(code: int) -> OSError:
    """The OSError for ``code``, as the filesystem returns it."""
    return OSError(code, os.strerror(code))


@dataclass
class Rule:
    """A fault: calls of ``ops`` on paths matching ``pattern`` fail with ``errno`` and/or wait ``latency``.

    ``count`` calls (``None``: until cleared), and only until ``deadline`` (monotonic; ``None``: no end).
    """

    id: int
    pattern: str
    ops: frozenset[str]
    errno: int = 0
    latency: float = 0.0
    count: int | None = None
    deadline: float | None = None
    hits: int = 0

    def active(self, now: float) -> bool:
        return (self.count is None or self.count > 0) and (self.deadline is None or now < self.deadline)

    def matches(self, names: tuple[str, ...], paths: tuple[str, ...]) -> bool:
        if "*" not in self.ops and not self.ops.intersection(names):
            return False
        prefix = self.pattern.rstrip("/")
        return any(
            fnmatch.fnmatchcase(p, self.pattern) or p == prefix or p.startswith(prefix + "/") for p in paths
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pattern": self.pattern,
            "ops": sorted(self.ops),
            "errno": errno.errorcode.get(self.errno, self.errno) if self.errno else None,
            "latency": self.latency,
            "remaining": self.count,
            "hits": self.hits,
        }


@dataclass
class _Bucket:
    """Bandwidth limit: each transfer reserves the next ``n / rate`` seconds of the channel."""

    rate: float | None = None
    next_free: float = 0.0

    def reserve(self, n: int, now: float) -> float:
        if not self.rate or n <= 0:
            return now
        start = max(now, self.next_free)
        self.next_free = start + n / self.rate
        return self.next_free


@dataclass
class Faults:
    """All fault state; every method is thread-safe (FUSE calls arrive on many threads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rules: list[Rule] = field(default_factory=list)
    next_id: int = 1
    read: _Bucket = field(default_factory=_Bucket)
    write: _Bucket = field(default_factory=_Bucket)
    space_left: int | None = None
    calls: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    bytes_written: int = 0

    def check(self, names: tuple[str, ...], *paths: str | None) -> None:
        """Count the call, wait the matching latencies, raise the first matching failure."""
        rel = tuple((p or "/").lstrip("/") for p in paths)
        failure = 0
        wait = 0.0
        with self.lock:
            self.calls[names[0]] = self.calls.get(names[0], 0) + 1
            now = time.monotonic()
            for rule in self.rules:
                if not rule.active(now) or not rule.matches(names, rel):
                    continue
                if rule.errno and failure:
                    continue  # the first failing rule wins; later ones are not consumed
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                wait += rule.latency
                failure = failure or rule.errno
        if wait > 0:
            time.sleep(wait)
        if failure:
            raise oserror(failure)

    def transfer(self, direction: str, n: int) -> None:
        """Account ``n`` bytes read or written and wait for the bandwidth limit."""
        with self.lock:
            bucket = self.read if direction == "read" else self.write
            if direction == "read":
                self.bytes_read += n
            else:
                self.bytes_written += n
            until = bucket.reserve(n, time.monotonic())
        delay = until - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def take_space(self, n: int) -> int:
        """How many of ``n`` bytes may be written (a short write at the limit); ENOSPC when none."""
        with self.lock:
            if self.space_left is None:
                return n
            if self.space_left <= 0 and n > 0:
                raise oserror(errno.ENOSPC)
            n = min(n, self.space_left)
            self.space_left -= n
            return n

    def command(self, req: dict[str, Any]) -> dict[str, Any]:
        """Apply one control request; its reply. Kinds: ``rule`` (fail and/or delay), ``clear``,
        ``throttle``, ``space``, ``reset``, ``stats``, ``ping``."""
        kind = req.get("kind")
        with self.lock:
            if kind == "rule":
                ops = frozenset(req.get("ops") or ["*"])
                unknown = sorted(ops - OPS - {"*"})
                if unknown:
                    raise ValueError(f"unknown operations {unknown}; known: {sorted(OPS)}")
                code = req.get("errno") or 0
                if isinstance(code, str) and not isinstance(getattr(errno, code, None), int):
                    raise ValueError(f"unknown errno name {code!r}")
                code = getattr(errno, code) if isinstance(code, str) else int(code)
                seconds = req.get("seconds")
                rule = Rule(
                    id=self.next_id,
                    pattern=str(req["pattern"]),
                    ops=ops,
                    errno=code,
                    latency=float(req.get("latency") or 0.0),
                    count=req.get("count"),
                    deadline=None if seconds is None else time.monotonic() + float(seconds),
                )
                self.next_id += 1
                self.rules.append(rule)
                return {"ok": True, "id": rule.id}
            if kind == "clear":
                rid = req.get("id")
                self.rules = [r for r in self.rules if rid is not None and r.id != rid]
            elif kind == "throttle":  # a new limit starts now: nothing reserved under the old one
                self.read, self.write = _Bucket(req.get("read")), _Bucket(req.get("write"))
            elif kind == "space":
                self.space_left = req.get("bytes")
            elif kind == "reset":
                self.rules, self.space_left = [], None
                self.read, self.write = _Bucket(), _Bucket()
            elif kind == "stats":
                return {
                    "ok": True,
                    "rules": [r.public() for r in self.rules],
                    "calls": dict(self.calls),
                    "bytes_read": self.bytes_read,
                    "bytes_written": self.bytes_written,
                    "space_left": self.space_left,
                    "throttle": {"read": self.read.rate, "write": self.write.rate},
                }
            elif kind != "ping":
                raise ValueError(f"unknown request kind {kind!r}")
            return {"ok": True}


def recv_line(sock: Any) -> bytes:
    """Bytes from ``sock`` up to and including the first newline (or up to EOF): one control message."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
