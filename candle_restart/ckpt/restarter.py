"""Restart: choosing the checkpoint, loading it through the backend, taking over its bookkeeping.

`Restorer` owns the restart state of one callback: whether ``restart`` ran,
the ``ckpt-info.json`` it restored (``restarted``, CANDLE's dict), the
mid-epoch position to resume at, and which files' CRC-32 were checked.

``restart`` chooses through `candle_restart.ckpt.restore.find_restart`
(``last`` first, else the newest that verifies; the other of
``<ckpt_directory>`` and ``<ckpt_directory>/ckpts`` next; with two tiers, the newer of the
node-local and the shared tier's, `candle_restart.ckpt.drain.Drainer.choose_restart`), loads through the
backend's ``build_model`` and takes over the best-metric bookkeeping; once a
checkpoint is restored, ``last`` and ``best`` are this run's.  With
``ckpt_restart_mode=required`` and nothing usable, `NoCheckpointError` names
the first checkpoint that failed verification and why (from the structured
`Rejected` records, never from log text).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from candle_restart.ckpt.checksum import DISABLED, checksum_file
from candle_restart.ckpt.events import EpochEvents
from candle_restart.ckpt.layout import INFO_FILE, TRAIN_STATE_FILE, CkptLayout, restart_roots
from candle_restart.ckpt.log import Logs
from candle_restart.ckpt.restore import Found, Rejected, find_restart, set_aside
from candle_restart.errors import LoadChecksumError, NoCheckpointError
from candle_restart.records.ckptinfo import CkptInfo, Position, read_ckpt_info

if TYPE_CHECKING:
    from candle_restart.ckpt.drain import Drainer

# A ckpt-info.json as CANDLE's restart returned it: benchmarks index it freely (J["epoch"]).
CandleDict = dict[str, Any]


class RestartHost(Logs, Protocol):
    """What a restart needs of the callback (CANDLE's method names)."""

    def wait_for_commit(self) -> None: ...

    def set_model(self, model: object) -> None: ...

    def build_model(self, model_file: Path | str) -> None: ...

    def restart_json(self, directory: Path | str) -> CandleDict: ...

    def relpath(self, p: Path | str) -> Path: ...


class Restorer:
    """The restart of one callback (see the module docstring)."""

    def __init__(
        self,
        layout: CkptLayout,
        directory: str,
        mode: str,
        events: EpochEvents,
        drainer: Drainer | None = None,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        """``drainer``: a two-tier run's (``layout`` is then the node-local tier); ``fence``: the
        writer lease's check, run before a checkpoint that fails verification is set aside."""
        self.layout = layout
        self.drainer = drainer
        self.fence = fence
        self.events = events  # where a restart's choice is recorded (ckpts/events.jsonl)
        self.directory = directory  # ckpt_directory as given: the other root is looked at too
        self.mode = mode  # ckpt_restart_mode: off, auto, required
        self.done = False  # restart ran; its result is in restarted
        self.restarted: CandleDict | None = None
        self.info: CkptInfo | None = None  # the record behind restarted
        self.resume_position: Position | None = None  # set from a mid-epoch checkpoint
        self.verified_files: set[str] = set()  # files of the restored checkpoint whose CRC-32 was checked
        # Files whose CRC-32 the loader checks as it reads them (name -> recorded CRC); the loader
        # removes each it checked, and `restart` checks what is left after the load.
        self.deferred: dict[str, str] = {}

    def restart(
        self, host: RestartHost, model: object, hold_writer: Callable[[], object]
    ) -> CandleDict | None:
        """Load the newest checkpoint that verifies into ``model``; its ``ckpt-info.json`` or None.

        ``hold_writer`` is called (no arguments) before anything is set aside.
        """
        host.wait_for_commit()
        self.done, self.restarted, self.info = True, None, None
        if self.mode == "off":
            self.events.restarted(None, None)  # a fresh start
            return None
        host.set_model(model)
        hold_writer()  # set-aside and the writes that follow are this process's alone
        while True:
            found = self.choose(host)
            if found is None:
                self.events.restarted(None, None)  # a fresh start
                return None
            try:
                return self._load(host, found)
            except LoadChecksumError as exc:  # found before anything was assigned: fall back
                host.info(f"restarting: epochs/{found.path.name} is unusable: {exc}")
                set_aside(found.path, host.info, str(exc), self.fence)

    def _load(self, host: RestartHost, found: Found) -> CandleDict:
        """Load ``found`` into the host's model; `LoadChecksumError` (nothing assigned) if a file whose
        CRC-32 was left to the load does not match."""
        model_file = found.path / found.info.model_file
        files = found.info.files or {}
        later = set(self._defer(found.info))
        self.deferred = {
            n: str(e.crc32) for n, e in files.items() if n in later and e.crc32 not in (None, DISABLED)
        }
        self.verified_files = {n for n, e in files.items() if e.crc32 not in (None, DISABLED) and n not in later}
        host.info(f"restarting: '{host.relpath(model_file)}'")
        result = host.restart_json(found.path)
        host.info(f"restarting: epoch={result['epoch']} timestamp={result.get('timestamp')}")
        start = time.perf_counter()
        megabytes = sum(p.stat().st_size for p in found.path.iterdir() if p.is_file()) / (1024 * 1024)
        host.build_model(model_file)
        self._check_left(found.path)  # a deferred file this load did not read (none, normally)
        duration = max(time.perf_counter() - start, 1e-9)
        host.info(
            f"restarting: model read:  {megabytes:0.3f} MB in {duration:0.3f} seconds ({megabytes / duration:0.2f} MB/s)."
        )
        self.restored(found, result)
        return result

    # The files whose CRC-32 restart leaves to the loader: the host's `loads_checked` says whether its
    # `build_model` checks `deferred` while reading, before it assigns anything (see keras.state).
    loads_checked = False

    def _defer(self, info: CkptInfo) -> Collection[str]:
        """The model file, when the loader reads it through the training state (checked as read)."""
        files = info.files or {}
        if not self.loads_checked or TRAIN_STATE_FILE not in files or info.model_file not in files:
            return ()
        return (info.model_file,)

    def _check_left(self, directory: Path) -> None:
        """Verify, by a full read, every deferred file the load did not check; `LoadChecksumError`."""
        for name, crc in sorted(self.deferred.items()):
            found = checksum_file(directory / name).value
            if found != crc:
                raise LoadChecksumError(
                    str(directory / name), None, f"checksum mismatch: ckpt-info.json recorded {crc}, file has {found}"
                )
        self.deferred = {}

    def restored(self, found: Found, result: CandleDict) -> None:
        """Restarted from ``found`` (its epoch: ``found.info.epoch`` epochs done); ``result`` is CANDLE's dict."""
        self.restarted = result
        self.events.restarted(found.path, result, found.via)

    def choose(self, logs: Logs) -> Found | None:
        """The checkpoint to restart from; raises `NoCheckpointError` when required and none verifies."""
        rejected: list[Rejected] = []
        # Recorded CRCs are always verified, whatever this run's ckpt_checksum says.
        found = find_restart(
            self.layout, True, logs.info, set_aside=True, rejected=rejected, fence=self.fence, defer=self._defer
        )
        if self.drainer is not None:  # the newer of the node-local and the shared checkpoint
            found = self.drainer.choose_restart(found, logs.info, rejected, self._defer)
        for root in restart_roots(self.directory, self.layout.root)[1:]:
            if found is None:  # written the other way (CANDLE's <ckpt_directory>/ckpts, or not)
                found = find_restart(CkptLayout.at(root), True, logs.info, rejected=rejected, defer=self._defer)
        if found is None and self.mode == "required":
            detail = f"; {describe(rejected[0])}" if rejected else ""
            raise NoCheckpointError(
                str(self.layout.root),
                "ckpt_restart_mode",
                f"is 'required' but no checkpoint could be found{detail}",
            )
        return found

    def read(self, directory: Path | str, logs: Logs) -> CkptInfo:
        """Read ``directory/ckpt-info.json`` for ``restart_json``, with CANDLE's log lines."""
        info = read_ckpt_info(Path(directory) / INFO_FILE)
        logs.debug("ckpt-info.json contains:")
        logs.debug(json.dumps(info.to_dict(), indent=2))
        logs.info(f"restarting from epoch: {info.epoch}")
        self.info = info
        return info


def describe(rejected: Rejected) -> str:
    """One clause saying which checkpoint failed verification and why."""
    where = "'last' -> " if rejected.via == "last" else ""
    return f"{where}epochs/{rejected.path.name} is unusable: {rejected.error}"
