"""The checkpoint log: CANDLE's format, one logger per callback instance.

CANDLE attached its handlers to one shared ``logging.getLogger("CandleCkpt")``,
so a second callback in the same process wrote every line twice and into the
first run's ``ckpt.log``.  Here each instance gets a logger of its own that
does not propagate, writing DEBUG and up to ``ckpt_directory/ckpt.log`` and
INFO (DEBUG when verbose) to stdout.  Its file is closed when the owner is
garbage-collected.
"""

from __future__ import annotations

import itertools
import logging
import sys
import weakref
from pathlib import Path

LINE_FORMAT = "%(asctime)s CandleCkpt: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_serial = itertools.count(1)


def _close(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def make_logger(owner: object, logfile: Path, verbose: bool) -> logging.Logger:
    """A fresh logger writing to ``logfile`` (created with its parents) and stdout."""
    logger = logging.getLogger(f"candle_restart.ckpt.{next(_serial)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logfile.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(logfile)
    to_file.setFormatter(logging.Formatter(LINE_FORMAT, DATE_FORMAT))
    to_file.setLevel(logging.DEBUG)
    to_stdout = logging.StreamHandler(sys.stdout)
    to_stdout.setFormatter(logging.Formatter(LINE_FORMAT, DATE_FORMAT))
    to_stdout.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.addHandler(to_file)
    logger.addHandler(to_stdout)
    weakref.finalize(owner, _close, logger)
    return logger
