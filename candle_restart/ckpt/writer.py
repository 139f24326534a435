"""Writing one checkpoint into its work directory: the files, their sizes and CRC-32s, its info.

`CheckpointWriter` does the three things a checkpoint's content needs, with
CANDLE's log lines:

* `write_snapshot`: a backend's in-memory `Snapshot` written into ``work/``,
  checksummed in the same pass (`candle_restart.ckpt.sink`); may run in the
  commit thread, so it touches nothing but the files and the log;
* `write_with_backend` + `checksum_dir`: a backend that writes its own files
  (CANDLE's ``write_model_backend``), timed, then checksummed by reading the
  files back (training thread);
* `describe`: the `CkptInfo` of a checkpoint about to be taken (training
  thread: it reads the best-metric bookkeeping as it is at that instant, and
  stamps ``time_elapsed`` since this writer's previous checkpoint).

The per-file table and the model's CRC-32 are returned, never stored on the
callback by another thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from candle_restart.ckpt.best import BestTracker
from candle_restart.ckpt.checksum import checksum_file, list_files
from candle_restart.ckpt.info import timestamp, writer_identity
from candle_restart.ckpt.layout import STATE_FILES
from candle_restart.ckpt.log import Logs
from candle_restart.ckpt.sink import CheckpointFiles, Snapshot
from candle_restart.records.ckptinfo import FIRST, SCHEMA_VERSION, CkptInfo, FileEntry, Position

FileTable = dict[str, FileEntry]


def model_crc(files: Mapping[str, FileEntry], model_file: str) -> str | None:
    """The CRC-32 of the model file in ``files`` (None: not there, or checksums off)."""
    entry = files.get(model_file)
    return None if entry is None else entry.crc32


def with_files(info: CkptInfo, files: Mapping[str, FileEntry]) -> CkptInfo:
    """``info`` completed with the per-file table of the checkpoint as written."""
    state = next((name for name in STATE_FILES if name in files), None)
    return info.with_files(files, model_crc(files, info.model_file), state)


class CheckpointWriter:
    """Writes checkpoint files and describes checkpoints (see the module docstring)."""

    def __init__(self, checksum: bool, logs: Logs, relpath: Callable[[Path], Path]) -> None:
        self.checksum_enabled = checksum
        # Record every file's CRC-32 (computed while writing) even with checksums off: a two-tier
        # run's drain then verifies its copy without reading it back (docs/structure.md).
        self.record_crc = False
        self._logs = logs
        self._relpath = relpath
        self._timestamp_last: datetime | None = None  # the previous describe (training thread)

    # ----- files ----------------------------------------------------------------------------
    def write_snapshot(self, snapshot: Snapshot, work: Path) -> FileTable:
        """Write ``snapshot`` into ``work``, checksummed in the same pass; the ``files`` table."""
        self._logs.debug(f"writing model to: '{self._relpath(work / snapshot.model_file)}'")
        start = time.perf_counter()
        files = CheckpointFiles(work, self.checksum_enabled or self.record_crc)
        try:
            snapshot.write(files)
            table = files.finish()
        except BaseException:
            files.abort()
            raise
        for sink in files.sinks.values():
            stats = sink.stats
            if stats is not None and self.checksum_enabled:
                self._logs.info(stats.log_line())
        self._say_rate(files.nbytes, start)
        return table

    def write_with_backend(self, model_file: Path, write: Callable[[], None]) -> None:
        """Run a backend's own ``write`` of ``model_file``'s directory, and log its rate."""
        self._logs.debug(f"writing model to: '{self._relpath(model_file)}'")
        start = time.perf_counter()
        write()
        nbytes = sum(p.stat().st_size for p in model_file.parent.rglob("*") if p.is_file())
        self._say_rate(nbytes, start)

    def checksum_dir(self, work: Path) -> FileTable:
        """Size (always) and CRC-32 (when ``ckpt_checksum``) of every file in ``work``."""
        table: FileTable = {}
        for name in list_files(work):
            path = work / name
            if self.checksum_enabled:
                crc: str | None = self.checksum_file(path)
            else:
                crc = checksum_file(path).value if self.record_crc else None
            table[name] = FileEntry(path.stat().st_size, crc)
        return table

    def checksum_file(self, path: Path) -> str:
        """Read ``path``, compute its CRC-32, log CANDLE's line; the value as a string."""
        stats = checksum_file(path)
        self._logs.info(stats.log_line())
        return stats.value

    def _say_rate(self, nbytes: int, start: float) -> None:
        duration = max(time.perf_counter() - start, 1e-9)
        megabytes = nbytes / (1024 * 1024)
        self._logs.debug(
            f"model wrote: {megabytes:0.3f} MB in {duration:0.3f} seconds ({megabytes / duration:0.2f} MB/s)."
        )

    # ----- the info -------------------------------------------------------------------------
    def describe(
        self,
        epoch: int,
        position: Position | None,
        *,
        model_file: str,
        best: BestTracker,
        epochs: int,
        metadata: str | None,
        files: Mapping[str, FileEntry] | None = None,
    ) -> CkptInfo:
        """The `CkptInfo` of a checkpoint of 1-based ``epoch`` (``position``: taken inside it).

        ``files`` None: no table yet (`with_files` adds it once the files are written).
        """
        now = datetime.now()
        elapsed: float | str = (
            FIRST if self._timestamp_last is None else (now - self._timestamp_last).total_seconds()
        )
        self._timestamp_last = now
        info = CkptInfo(
            epoch=epoch if position is None else epoch - 1,  # epochs finished: fit's initial_epoch
            save_best_metric=best.metric,
            best_metric_last=best.value,
            model_file=model_file,
            checksum=None,
            timestamp=timestamp(now),
            time_elapsed=elapsed,
            metadata=metadata,
            schema_version=SCHEMA_VERSION,
            epochs=epochs,
            complete=position is None and epoch >= epochs,
            best_epoch=best.epoch or None,
            best_mode=best.mode,
            position=position,
            writer=writer_identity(),
        )
        return with_files(info, files or {})
