"""CANDLE's log methods (``info``, ``debug``, ``warning``, the opening lines, ``relpath``), as a mixin.

CANDLE's callback logs through these and benchmark code calls them; the lines go to
``ckpt.log`` (and CANDLE's bare messages to stdout: `candle_restart.ckpt.log`).  Mixed into
`candle_restart.candle.facade.CandleCkpt`; it reads only the attributes declared below.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from candle_restart.ckpt.layout import CkptLayout
from candle_restart.ckpt.log import relative_path, release_console
from candle_restart.ckpt.params import CkptParams, unknown_ckpt_keys


class CandleLogMethods:
    """Mixed into `candle_restart.candle.facade.CandleCkpt`; needs the attributes declared here."""

    logger: logging.Logger | None
    gParams: dict[str, Any]
    settings: CkptParams
    layout: CkptLayout
    shared_layout: CkptLayout
    cwd: str

    def info(self, message: str) -> None:
        if self.logger is not None:
            self.logger.info(message)

    def debug(self, message: str) -> None:
        if self.logger is not None:
            self.logger.debug(message)

    def warning(self, message: str) -> None:
        if self.logger is not None:
            self.logger.warning(message)

    def warn_unknown_keys(self) -> None:
        """A warning per ``ckpt_*`` key of gParameters that nothing reads (a typo, most likely).

        Keys without the ``ckpt_`` prefix are the benchmark's own: accepted silently, as CANDLE did.
        """
        for key, close in unknown_ckpt_keys(self.gParams):
            hint = f"; did you mean {close}?" if close else ""
            self.warning(f"gParameters: {key}: is not a checkpoint key and is ignored{hint}")

    def relpath(self, p: Path | str) -> Path:
        """``p`` relative to the working directory when it lies below it, else unchanged."""
        return relative_path(self.cwd, p)

    def report_initial(self) -> None:
        """Simply report that we are ready to run."""
        self.info("Callback initialized.")
        settings = self.settings
        if settings.save_interval == 0:
            self.info("Checkpoint save interval == 0 -> checkpoints are disabled.")
            return
        if settings.metadata is not None:
            self.info(f"metadata='{settings.metadata}'")
        if settings.save_best:
            self.info(f"save_best_metric='{settings.save_best_metric}'")
        self.info("PWD: " + os.getcwd())
        self.info(f"ckpt_directory: {self.shared_layout.root}")
        if self.shared_layout != self.layout:
            every = settings.drain_interval
            self.info(f"ckpt_local_directory: {self.layout.root} (drained every {every})")

    def release_console(self) -> None:
        """Print the log lines a background commit held back (call where no progress line is open)."""
        release_console(self.logger)
