"""The checkpoint log: CANDLE's format, one logger per callback instance.

CANDLE attached its handlers to one shared ``logging.getLogger("CandleCkpt")``,
so a second callback in the same process wrote every line twice and into the
first run's ``ckpt.log``.  Here each instance gets a logger of its own that
does not propagate, writing DEBUG and up to ``ckpt_directory/ckpt.log`` and
INFO (DEBUG when verbose) to stdout.  Its file is closed when the owner is
garbage-collected.

Formats, as CANDLE's ``set_up_logger``: the file gets ``LINE_FORMAT``
(``YYYY-mm-dd HH:MM:SS CandleCkpt: message``, what `candle_restart.report`
reads back); stdout gets the bare message (CANDLE's stream formatter is
empty), so tools that match CANDLE's stdout lines whole keep matching.
``ckpt_stdout_format=timestamped`` puts the file's format on stdout too.

Lines logged by a background commit (inside `console_held`) go to the file at
once but wait for `release_console` before they reach stdout: the training
thread releases them where no progress line is being drawn (an epoch's
start, the end of training), so they never land inside Keras' progress bar.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

LINE_FORMAT = "%(asctime)s CandleCkpt: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# ckpt_stdout_format -> the stdout format: CANDLE's bare message, or the file's timestamped line.
STDOUT_FORMATS = {"candle": "%(message)s", "timestamped": LINE_FORMAT}
_serial = itertools.count(1)


_held = threading.local()


class Logs(Protocol):
    """Where a checkpoint collaborator logs: the callback's ``info``/``debug``/``warning``.

    Collaborators call these through the callback (not its logger) so that a
    subclass or a test that replaces ``info`` sees every line.
    """

    def info(self, message: str) -> None: ...

    def debug(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...


def relative_path(cwd: str, p: Path | str) -> Path:
    """``p`` relative to ``cwd`` when it lies below it, else unchanged (how the log shows paths)."""
    path = Path(p)
    try:
        return path.relative_to(cwd)
    except ValueError:
        return path


@contextmanager
def console_held() -> Iterator[None]:
    """While inside, this thread's checkpoint log lines wait for `release_console` to reach stdout."""
    _held.on = True
    try:
        yield
    finally:
        _held.on = False


class _Console(logging.StreamHandler):
    """stdout, holding back the records of a thread inside `console_held`."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self._waiting: list[logging.LogRecord] = []
        self._waiting_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_held, "on", False):
            with self._waiting_lock:
                self._waiting.append(record)
            return
        super().emit(record)

    def emit_held(self) -> None:
        with self._waiting_lock:
            waiting, self._waiting = self._waiting, []
        for record in waiting:
            super().emit(record)


def release_console(logger: logging.Logger | None) -> None:
    """Print the lines held back for ``logger``'s stdout, in order (a no-op for other loggers)."""
    for handler in logger.handlers if logger is not None else []:
        if isinstance(handler, _Console):
            handler.emit_held()


def _close(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def make_logger(owner: object, logfile: Path, verbose: bool, stdout_format: str = "candle") -> logging.Logger:
    """A fresh logger writing to ``logfile`` (created with its parents) and stdout.

    ``stdout_format`` is a key of `STDOUT_FORMATS` (``ckpt_stdout_format``).
    """
    logger = logging.getLogger(f"candle_restart.ckpt.{next(_serial)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logfile.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(logfile)
    to_file.setFormatter(logging.Formatter(LINE_FORMAT, DATE_FORMAT))
    to_file.setLevel(logging.DEBUG)
    to_stdout = _Console()
    to_stdout.setFormatter(logging.Formatter(STDOUT_FORMATS[stdout_format], DATE_FORMAT))
    to_stdout.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.addHandler(to_file)
    logger.addHandler(to_stdout)
    weakref.finalize(owner, _close, logger)
    return logger
