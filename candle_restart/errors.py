"""Errors raised by the checkpoint core.

Every error here renders as one line that names where the problem is (a file
or ``gParameters``), the key, and what is wrong, so a user never has to read a
traceback to find a typo.  Raising one of these means nothing on disk changed.
"""

from __future__ import annotations

import errno


class CkptError(Exception):
    """Base class of every error the checkpoint core raises on purpose."""

    def __init__(self, where: str, key: str | None, problem: str) -> None:
        self.where = where
        self.key = key
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.key:
            return f"{self.where}: {self.key}: {self.problem}"
        return f"{self.where}: {self.problem}"


class ParamError(CkptError, TypeError, ValueError):
    """A gParameters key has a wrong type or value (bad input: do not retry).

    It subclasses both ``TypeError`` and ``ValueError`` because CANDLE raised
    one or the other for the same mistakes, and client code catches either.
    """


class CorruptCheckpointError(CkptError):
    """A checkpoint directory or its ``ckpt-info.json`` fails verification."""


class LoadChecksumError(CorruptCheckpointError):
    """A file whose CRC-32 was left to the loader (checked while it reads the file, before anything
    is assigned) does not match ``ckpt-info.json``: restart sets the checkpoint aside and falls back."""


class NoCheckpointError(CkptError):
    """``ckpt_restart_mode`` is ``required`` but no whole checkpoint exists."""


class CommitError(CkptError):
    """Writing a checkpoint failed; ``last`` and ``best`` were left untouched."""


class CheckpointIOError(CkptError):
    """A checkpoint could not be read for an I/O reason (EIO, EACCES, ESTALE, ...), not its content.

    Such errors come and go on shared filesystems: they are retried, reported,
    and never taken for corruption (nothing is set aside for them).
    """


# I/O errors that say nothing about a file's content.  Anything else a read raises (EINVAL
# on a forged offset, say) is the content's fault.
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EIO", "EACCES", "EPERM", "ESTALE", "ENOENT", "EAGAIN", "EINTR", "ETIMEDOUT",
        "ENOTCONN", "EHOSTDOWN", "EREMOTEIO", "ENOLINK", "ECOMM", "ENXIO", "EBUSY", "ENOMEM",
    )
    if hasattr(errno, name)
)  # fmt: skip


def is_transient(exc: BaseException) -> bool:
    """True for an OSError whose errno is in `TRANSIENT_ERRNOS`."""
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


class RestartError(CkptError):
    """A restart cannot be completed as the script asks (say, its optimizer already trained)."""
