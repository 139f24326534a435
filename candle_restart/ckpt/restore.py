"""Choosing the checkpoint to restart from, and verifying it.

Contract of `find_restart`:

* ``last`` is tried first (a user may re-link it to roll back, as CANDLE
  documents); its text names an epoch (``epochs/NNN``, relative, or CANDLE's
  absolute link), resolved inside this ``ckpt_directory`` so a moved run
  directory still restarts;
* a checkpoint is used only if it verifies: ``ckpt-info.json`` parses and has
  the right shape, every recorded file exists inside the checkpoint with its
  recorded size, and, when ``check_checksums`` is on, its recorded CRC-32;
* if ``last`` is missing, broken or fails verification, the newest
  checkpoint in ``epochs/`` that verifies is used, and the log says which
  and why; every skipped checkpoint is named in the log;
* returns None when nothing verifies (a fresh start);
* with ``set_aside``, a checkpoint that fails verification is renamed
  ``epochs/NNN.corrupt-*`` (kept for inspection, never deleted) and named in the log;
* every checkpoint that failed verification is also handed to ``rejected``
  (a list the caller passes) as a `Rejected`: its epoch, the error, and where
  it was set aside, so callers never search log text for the reason;
* only content errors (bad JSON, wrong shape, a size or CRC mismatch, a
  missing file) fail verification.  An I/O error that says nothing of the
  content (EIO, EACCES, ESTALE, a file vanishing mid-read) is retried with
  a short backoff (``patience``); if it persists, `CheckpointIOError` is
  raised: nothing is set aside, and restart never falls back past a
  checkpoint it could not read (that would lose its progress).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from candle_restart.ckpt.checksum import checksum_file
from candle_restart.ckpt.events import set_aside as record_set_aside
from candle_restart.ckpt.layout import INFO_FILE, CkptLayout, epoch_name
from candle_restart.errors import CheckpointIOError, CorruptCheckpointError, is_transient
from candle_restart.records.ckptinfo import DISABLED, CkptInfo, read_ckpt_info

Log = Callable[[str], None]
# Seconds between tries of a checkpoint that hit a transient I/O error (about 4 s in all).
PATIENCE = (0.1, 0.3, 1.0, 2.5)


@dataclass(frozen=True)
class Found:
    """A verified checkpoint: its directory, its parsed ``ckpt-info.json``, and how it was found."""

    epoch: int
    path: Path
    info: CkptInfo
    via: str  # "last" or "fallback"


@dataclass(frozen=True)
class Rejected:
    """A checkpoint that failed verification: why, and where it was set aside (None: left in place)."""

    epoch: int
    path: Path
    error: CorruptCheckpointError
    via: str  # "last" (the link named it) or "scan"
    set_aside_as: Path | None = None


def _member(directory: Path, name: str) -> Path:
    """``directory/name``, refused if a symlink along it leads outside ``directory``.

    ``name`` was checked to be relative without ``..``, so only links can escape;
    paths without any are accepted without resolving (the common, fast case).
    """
    path = directory / name
    parts = name.split("/")
    if any(os.path.islink(os.path.join(directory, *parts[: i + 1])) for i in range(len(parts))):
        real = os.path.realpath(path)
        if not real.startswith(os.path.realpath(directory) + os.sep):
            raise CorruptCheckpointError(str(path), None, "resolves outside its checkpoint directory")
    return path


def _read_error(path: Path, exc: OSError, vanished_is_io: bool = False) -> Exception:
    """The error to raise for ``exc``: `CheckpointIOError` when it says nothing of the content."""
    if is_transient(exc) and (vanished_is_io or not isinstance(exc, FileNotFoundError)):
        return CheckpointIOError(str(path), None, f"cannot be read: {exc.strerror or exc}")
    return CorruptCheckpointError(str(path), None, f"cannot be read: {exc}")


def _check_file(directory: Path, name: str, size: int | None, crc: str | None, check: bool) -> str | None:
    """Verify one file; return the checksum pass's log line, if one was made."""
    path = _member(directory, name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CorruptCheckpointError(str(path), None, "is missing") from None
    except OSError as exc:
        raise _read_error(path, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise CorruptCheckpointError(str(path), None, "is not a regular file")
    if size is not None and st.st_size != size:
        raise CorruptCheckpointError(str(path), None, f"has {st.st_size} bytes, ckpt-info.json recorded {size}")
    if not (check and crc is not None and crc != DISABLED):
        return None
    try:
        stats = checksum_file(path)
    except OSError as exc:  # it was there a moment ago: vanishing mid-read is I/O, not content
        raise _read_error(path, exc, vanished_is_io=True) from None
    if stats.value != crc:
        raise CorruptCheckpointError(
            str(path), None, f"checksum mismatch: ckpt-info.json recorded {crc}, file has {stats.value}"
        )
    return stats.log_line()


Defer = Callable[[CkptInfo], Collection[str]]  # the files whose CRC-32 the loader checks as it reads them


def verify_patiently(
    directory: Path,
    check_checksums: bool,
    log: Log,
    patience: tuple[float, ...] = PATIENCE,
    defer: Defer | None = None,
) -> CkptInfo:
    """`verify_checkpoint`, retrying transient I/O errors after each delay in ``patience``.

    Raises `CorruptCheckpointError` at once for a content error, and
    `CheckpointIOError` when the I/O error outlasts every retry.
    """
    for delay in (*patience, None):
        try:
            return verify_checkpoint(directory, check_checksums, log, defer)
        except CheckpointIOError as exc:
            if delay is None:
                raise
            log(f"restarting: {exc}; trying again in {delay:g} s")
            time.sleep(delay)  # backoff of a transient error, not synchronisation
    raise AssertionError("unreachable")


def verify_checkpoint(
    directory: Path, check_checksums: bool, log: Log = lambda _msg: None, defer: Defer | None = None
) -> CkptInfo:
    """Verify one checkpoint directory and return its ``ckpt-info.json``; raise CorruptCheckpointError.

    ``defer`` (restart only) names, from the record, files whose CRC-32 is left to the
    loader, which checks it while reading them before anything is assigned (one read
    instead of two); their existence and size are still checked here.

    When checksums are checked, files are read concurrently (a parallel
    filesystem serves several streams faster than one); their log lines come
    out in file order.  Size checks alone (the coordinator's scan) stay serial.
    """
    try:
        if not stat.S_ISDIR(os.stat(directory).st_mode):
            raise CorruptCheckpointError(str(directory), None, "is not a directory")
    except FileNotFoundError:
        raise CorruptCheckpointError(str(directory), None, "is missing") from None
    except OSError as exc:
        raise _read_error(directory, exc) from None
    info = read_ckpt_info(directory / INFO_FILE)
    checks: list[tuple[Path, str, int | None, str | None, bool]]
    if info.files is None:  # written by CANDLE: one model file and one checksum
        checks = [(directory, info.model_file, None, info.checksum, check_checksums)]
    elif info.model_file not in info.files:
        raise CorruptCheckpointError(str(directory / INFO_FILE), "files", "does not list model_file")
    else:
        later = set(defer(info)) if defer is not None else set()
        checks = [
            (directory, name, e.size, e.crc32, check_checksums and name not in later)
            for name, e in info.files.items()
        ]
    if not check_checksums or len(checks) < 2:
        lines = [_check_file(*check) for check in checks]
    else:
        with ThreadPoolExecutor(min(4, len(checks)), thread_name_prefix="verify") as pool:
            futures = [pool.submit(_check_file, *check) for check in checks]
            lines = [future.result() for future in futures]  # the first failure, in file order, is raised
    for line in lines:
        if line is not None:
            log(line)
    return info


def _candidates(layout: CkptLayout) -> list[tuple[int, Path]]:
    """Checkpoint directories by epoch, ascending; an ``epochs/.old-NNN-*`` counts when ``epochs/NNN`` is
    missing (a crash between the two renames of a replacement, see `candle_restart.ckpt.commit`)."""
    found = {epoch: layout.epoch_dir(epoch) for epoch in layout.list_epochs()}
    try:
        names = sorted(os.listdir(layout.epochs))
    except OSError:
        names = []
    for name in names:
        parts = name.split("-")
        if name.startswith(".old-") and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) not in found:
            found[int(parts[1])] = layout.epochs / name
    return sorted(found.items())


def _set_aside(path: Path, log: Log, problem: str, fence: Callable[[], None]) -> Path | None:
    """Rename a checkpoint that fails verification with ``problem`` out of the ``epochs/<digits>``
    namespace (never delete it), and record it in the events; its new path, or None when it was
    left in place.  ``fence`` (the writer lease's check) runs first and raises if it was lost: a
    writer stopped past its lease never renames what the new holder may be replacing."""
    if not path.is_dir() or path.is_symlink():
        return None
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    fence()
    try:
        os.rename(path, aside)
    except OSError as exc:
        log(f"restarting: could not set aside {path.parent.name}/{path.name}: {exc}")
        return None
    log(
        f"restarting: set aside {path.parent.name}/{path.name} as {path.parent.name}/{aside.name} (kept, not deleted)"
    )
    record_set_aside(path, aside, problem, log)
    return aside


set_aside = _set_aside  # restart's own, for a checkpoint its load found corrupt


def _unreadable(exc: CheckpointIOError, epoch: int) -> CheckpointIOError:
    return CheckpointIOError(
        exc.where,
        None,
        f"{exc.problem}, on every try: restart stops here rather than fall back past epochs/"
        f"{epoch_name(epoch)} (nothing was set aside; it is tried again next time)",
    )


def find_restart(
    layout: CkptLayout,
    check_checksums: bool,
    log: Log,
    set_aside: bool = False,
    patience: tuple[float, ...] = PATIENCE,
    rejected: list[Rejected] | None = None,
    fence: Callable[[], None] = lambda: None,
    defer: Defer | None = None,
) -> Found | None:
    """The checkpoint to restart from (see the module contract), or None.

    With ``set_aside`` (only the restarting writer passes it; readers such as the
    coordinator never change anything) each checkpoint that fails verification is
    renamed to ``NNN.corrupt-*`` so it is neither loaded nor counted again, after
    ``fence`` (the writer lease's check; it raises when the lease was lost).
    Raises `CheckpointIOError` when a checkpoint newer than any that verifies
    stays unreadable for an I/O reason through ``patience``.  Each checkpoint that
    failed verification is appended to ``rejected`` when given.
    """

    def reject(epoch: int, path: Path, exc: CorruptCheckpointError, via: str) -> None:
        aside = _set_aside(path, log, str(exc), fence) if set_aside else None  # "set aside a bad checkpoint"
        if rejected is not None:
            rejected.append(Rejected(epoch, path, exc, via, aside))

    tried: set[int] = set()
    last_epoch = layout.linked_epoch(layout.last)
    if last_epoch is not None:
        tried.add(last_epoch)
        path = layout.epoch_dir(last_epoch)
        try:
            return Found(last_epoch, path, verify_patiently(path, check_checksums, log, patience, defer), "last")
        except CheckpointIOError as exc:
            raise _unreadable(exc, last_epoch) from None
        except CorruptCheckpointError as exc:
            log(f"restarting: 'last' -> epochs/{epoch_name(last_epoch)} is unusable: {exc}")
            reject(last_epoch, path, exc, "last")
    elif layout.last.is_symlink():
        log(f"restarting: 'last' link is malformed: {os.readlink(layout.last)!r}")
    elif layout.epochs.is_dir():
        log("restarting: no 'last' link; looking for the newest checkpoint")
    for epoch, path in reversed(_candidates(layout)):
        if epoch in tried and path == layout.epoch_dir(epoch):
            continue
        try:
            info = verify_patiently(path, check_checksums, log, patience, defer)
        except CheckpointIOError as exc:
            raise _unreadable(exc, epoch) from None
        except CorruptCheckpointError as exc:
            log(f"restarting: skipping epochs/{epoch_name(epoch)}: {exc}")
            reject(epoch, path, exc, "scan")
            continue
        log(f"restarting: falling back to epochs/{epoch_name(epoch)} (newest checkpoint that verifies)")
        return Found(epoch, path, info, "fallback")
    return None
