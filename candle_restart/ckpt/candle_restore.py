"""CANDLE's restart methods (``restart``, ``restart_json``), as a mixin of `CandleCkpt`.

``restart`` chooses the checkpoint through `candle_restart.ckpt.restore.find_restart`
(``last`` first, else the newest that verifies), loads it through the
backend's ``build_model`` and takes over its best-metric bookkeeping
(`adopt_restart`): once a checkpoint is restored, ``last`` and ``best`` are
this run's (``links_own``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from candle_restart.ckpt.checksum import ALGORITHM, DISABLED
from candle_restart.ckpt.info import read_info
from candle_restart.ckpt.layout import INFO_FILE, CkptLayout, restart_roots
from candle_restart.ckpt.restore import find_restart
from candle_restart.errors import NoCheckpointError

if TYPE_CHECKING:
    from candle_restart.ckpt.events import EpochEvents
    from candle_restart.ckpt.lease import Lease
    from candle_restart.ckpt.params import CkptParams


class CandleRestartMethods:
    """Mixed into `candle_restart.ckpt.candle.CandleCkpt`; needs its layout, settings, logging and backend."""

    layout: CkptLayout
    settings: CkptParams
    ckpt_directory: str
    restart_done: bool
    restarted: dict[str, Any] | None
    verified_files: set[str]
    best_metric_last: float | None
    resume_position: dict[str, int] | None
    epoch_best: int
    links_own: bool
    events: EpochEvents

    if TYPE_CHECKING:  # provided by CandleCkpt and its backend

        def debug(self, message: str) -> None: ...

        def info(self, message: str) -> None: ...

        def relpath(self, p: Path | str) -> Path: ...

        def wait_for_commit(self) -> None: ...

        def hold_writer(self) -> Lease: ...

        def set_model(self, model: Any) -> None: ...

        def build_model(self, model_file: Path | str) -> None: ...

    def restart(self, model: Any, verbose: bool = True) -> dict[str, Any] | None:
        """Load the newest checkpoint that verifies into ``model``; return its ``ckpt-info.json`` or None."""
        self.wait_for_commit()
        self.restart_done, self.restarted = True, None
        mode = self.settings.restart_mode
        if mode == "off":
            self.events.restarted(None, None)
            return None
        self.set_model(model)
        self.hold_writer()  # set-aside and the writes that follow are this process's alone
        reasons: list[str] = []

        def log(message: str) -> None:
            reasons.append(message)
            self.info(message)

        # Recorded CRCs are always verified, whatever this run's ckpt_checksum says.
        found = find_restart(self.layout, True, log, set_aside=True)
        for root in restart_roots(self.ckpt_directory, self.layout.root)[1:]:
            if found is None:  # written the other way (CANDLE's <ckpt_directory>/ckpts, or not)
                found = find_restart(CkptLayout.at(root), True, log)
        if found is None:
            if mode == "required":
                why = [r for r in reasons if "unusable" in r or "skipping" in r]
                detail = f"; {why[0]}" if why else ""
                raise NoCheckpointError(
                    str(self.layout.root),
                    "ckpt_restart_mode",
                    f"is 'required' but no checkpoint could be found{detail}",
                )
            self.events.restarted(None, None)
            return None
        model_file = found.path / found.info["model_file"]
        files = found.info.get("files") or {}
        self.verified_files = {n for n, e in files.items() if e.get(ALGORITHM) not in (None, DISABLED)}
        self.info(f"restarting: '{self.relpath(model_file)}'")
        result = self.restart_json(found.path)
        self.info(f"restarting: epoch={result['epoch']} timestamp={result.get('timestamp')}")
        start = time.perf_counter()
        megabytes = sum(p.stat().st_size for p in found.path.iterdir() if p.is_file()) / (1024 * 1024)
        self.build_model(model_file)
        duration = max(time.perf_counter() - start, 1e-9)
        self.info(
            f"restarting: model read:  {megabytes:0.3f} MB in {duration:0.3f} seconds ({megabytes / duration:0.2f} MB/s)."
        )
        self.restarted = result
        self.events.restarted(found.path, result, found.via)
        return result

    def restart_json(self, directory: Path | str) -> dict[str, Any]:
        """Read ``directory/ckpt-info.json`` and restore the best-metric bookkeeping from it."""
        J = read_info(Path(directory) / INFO_FILE)
        self.debug("ckpt-info.json contains:")
        self.debug(json.dumps(J, indent=2))
        self.info(f"restarting from epoch: {J['epoch']}")
        self.adopt_restart(J)
        return J

    def adopt_restart(self, J: dict[str, Any]) -> None:
        """Take the best-metric bookkeeping and mid-epoch position from a checkpoint's ``ckpt-info.json``.

        The best epoch is the checkpoint's ``best_epoch`` (None: it had no best).
        Only a checkpoint CANDLE wrote (no ``best_epoch`` key) takes it from the
        ``best`` link, and only a link to an epoch it had finished by then.
        """
        best = J.get("best_metric_last")
        self.best_metric_last = float(best) if best is not None and math.isfinite(best) else None
        self.resume_position = J.get("position")
        self.links_own = True
        best_epoch = J.get("best_epoch")
        if isinstance(best_epoch, int) and not isinstance(best_epoch, bool):
            self.epoch_best = best_epoch
        elif "best_epoch" in J:
            self.epoch_best = 0
        else:
            linked = self.layout.linked_epoch(self.layout.best)
            done = J.get("epoch")
            fits = linked is not None and isinstance(done, int) and linked <= done
            self.epoch_best = linked if fits and linked is not None else 0
