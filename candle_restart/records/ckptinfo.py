"""``ckpt-info.json``: what one committed checkpoint is, in a file CANDLE's tools can read.

This module is the format's one reader and writer (`CkptInfo`).

Contract:

* Every key CANDLE writes keeps its name, type and meaning: ``epoch``
  (int: the number of finished epochs, i.e. ``initial_epoch`` for ``fit``),
  ``save_best_metric``, ``best_metric_last`` (running best; null while there
  is none), ``model_file``, ``checksum`` (CRC-32 of the model file as a
  decimal string, ``"__DISABLED__"`` when off), ``timestamp`` (local
  ``%Y-%m-%d %H:%M:%S``), ``time_elapsed`` (``"__FIRST__"`` on a process's
  first write, else seconds since its previous write), ``metadata``.
* Additions (`SCHEMA_VERSION` 1): ``schema_version``, ``epochs`` (maximum),
  ``complete``, ``best_epoch``, ``best_mode`` (min|max), ``position`` (null,
  or ``{"epoch", "batch"}`` for a checkpoint taken inside an epoch),
  ``state_file``, ``files`` (every file of the checkpoint: size and CRC-32 or
  null), ``writer`` (host, pid, Slurm job ids where set), and, only in a checkpoint
  copied from a parent task (a warm start), ``origin`` (`candle_restart.records.origin`).
* `CkptInfo.to_bytes` writes strict JSON (`CkptInfo.to_json`: a non-finite best
  becomes null), keys in the order above, ``indent=1``, one trailing newline.
* `CkptInfo.from_json` accepts every file this project wrote and CANDLE's own
  (none of the additions, ``Infinity`` as a best, keys missing); a file without
  ``schema_version`` is CANDLE's (``schema_version`` is None).  Anything of the
  wrong shape raises `CorruptCheckpointError` in one line naming the file, the
  key and the problem.  Keys it does not know are ignored.
* `CkptInfo.read` (`read_ckpt_info`) raises `CheckpointIOError` instead when an
  I/O error that says nothing of the content (EIO, EACCES, ESTALE) stopped the read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from candle_restart.errors import CheckpointIOError, CorruptCheckpointError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonFileError, read_json
from candle_restart.records.origin import Origin, OriginError

SCHEMA_VERSION = 1
FIRST = "__FIRST__"  # time_elapsed of a process's first write
DISABLED = "__DISABLED__"  # checksum when checksums are off
ALGORITHM = "crc32"  # the per-file checksum key

# A JSON value as `json.loads` returns it.
Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]
# ``writer``: host (str), pid (int), Slurm job ids (str).
Writer = Mapping[str, str | int]


@dataclass(frozen=True)
class FileEntry:
    """One file of a checkpoint: its size and CRC-32 (None when checksums were off)."""

    size: int
    crc32: str | None = None

    def to_dict(self) -> dict[str, Json]:
        return {"size": self.size, ALGORITHM: self.crc32}


FileTable = Mapping[str, FileEntry]


@dataclass(frozen=True)
class Position:
    """Where inside epoch ``epoch`` (1-based) a mid-epoch checkpoint was taken: ``batch`` batches done."""

    epoch: int
    batch: int

    def to_dict(self) -> dict[str, Json]:
        return {"epoch": self.epoch, "batch": self.batch}


@dataclass(frozen=True)
class CkptInfo:
    """One ``ckpt-info.json`` (see the module contract); `read` and `from_json` read it, `to_bytes` writes it."""

    epoch: int
    model_file: str
    save_best_metric: str | None = None
    best_metric_last: float | None = None  # may be infinite in a file CANDLE wrote
    checksum: str | None = None
    timestamp: str | None = None
    time_elapsed: float | str | None = None  # FIRST or seconds
    metadata: str | None = None
    schema_version: int | None = None  # None: CANDLE wrote it (none of the keys below)
    epochs: int | None = None
    complete: bool | None = None
    best_epoch: int | None = None
    best_mode: str | None = None
    position: Position | None = None
    state_file: str | None = None
    files: FileTable | None = None
    writer: Writer | None = None
    origin: Origin | None = None  # a warm start's copy: the parent checkpoint it came from

    @property
    def batch(self) -> int | None:
        """Batches into its epoch of a mid-epoch checkpoint; None at an epoch's end."""
        return None if self.position is None else self.position.batch

    # ----- writing ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Json]:
        """The file's object, keys in the written order (CANDLE's dict: what ``restart`` returns).

        A record read from CANDLE's file has only CANDLE's keys.
        """
        out: dict[str, Json] = {
            "epoch": self.epoch,
            "save_best_metric": self.save_best_metric,
            "best_metric_last": self.best_metric_last,
            "model_file": self.model_file,
            "checksum": self.checksum,
            "timestamp": self.timestamp,
            "time_elapsed": self.time_elapsed,
            "metadata": self.metadata,
        }
        if self.schema_version is None:
            return out
        out.update(
            schema_version=self.schema_version,
            epochs=self.epochs,
            complete=self.complete,
            best_epoch=self.best_epoch,
            best_mode=self.best_mode,
            position=None if self.position is None else self.position.to_dict(),
            state_file=self.state_file,
            files=None if self.files is None else {n: e.to_dict() for n, e in self.files.items()},
            writer=None if self.writer is None else dict(self.writer),
        )
        if self.origin is not None:
            out["origin"] = self.origin.to_json()
        return out

    def to_json(self) -> dict[str, Json]:
        """The object of ``ckpt-info.json``: `to_dict` in strict JSON (a non-finite best is null)."""
        best = self.best_metric_last
        data = self.to_dict()
        data["best_metric_last"] = best if best is None or math.isfinite(best) else None
        return data

    def to_bytes(self) -> bytes:
        """The bytes of ``ckpt-info.json``: strict JSON, ``indent=1``, a trailing newline."""
        return (json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n").encode()

    def with_files(self, files: FileTable, model_crc: str | None, state_file: str | None) -> CkptInfo:
        """This record with the per-file table of the written checkpoint."""
        return replace(self, files=dict(files), checksum=model_crc or DISABLED, state_file=state_file)

    # ----- reading ---------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: Json | object, path: Path | str) -> CkptInfo:
        """Validate the parsed object of ``path`` (see the module contract) into a record."""
        return _Reader(Path(path)).read(data)

    @classmethod
    def read(cls, path: Path) -> CkptInfo:
        """Read and validate one ``ckpt-info.json`` (ours or CANDLE's); see the module contract."""
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise CorruptCheckpointError(str(path), None, "is missing") from None
        except JsonFileError as exc:
            if exc.transient:  # EIO, EACCES, ESTALE...: the file may be fine
                raise CheckpointIOError(str(path), None, exc.problem) from None
            raise CorruptCheckpointError(str(path), None, exc.problem) from None
        return cls.from_json(data, path)

    @property
    def best_is_finite(self) -> bool:
        return self.best_metric_last is not None and math.isfinite(self.best_metric_last)


read_ckpt_info = CkptInfo.read  # the public name (`candle_restart.ckpt.read_ckpt_info`)


def safe_relative(name: str) -> bool:
    """True if ``name`` is a relative path that stays inside its directory."""
    # As PurePosixPath(name) would say (absolute: a leading "/"; ".." as a part), without building one.
    return bool(name) and not name.startswith("/") and ".." not in name.split("/") and "\\" not in name


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Reader:
    """Checks one parsed file; every failure names ``path`` and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.check = Fields(path, CorruptCheckpointError)
        self.fail, self.number = self.check.fail, self.check.opt_number
        self.string, self.flag = self.check.opt_string, self.check.opt_flag

    def integer(self, value: object, key: str, minimum: int | None = None) -> int | None:
        """``value`` if None or an int; with ``minimum``: an int >= it (None is the error)."""
        if minimum is None:
            return self.check.opt_integer(value, key)
        return self.check.integer(value, key, minimum)

    def member(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not safe_relative(value):
            raise self.fail(key, f"must be a file name inside the checkpoint, got {value!r}")
        return value

    def read(self, data: object) -> CkptInfo:
        if not isinstance(data, dict):
            raise self.fail(None, f"must hold a JSON object, got {type(data).__name__}")
        get = data.get
        epoch = self.integer(get("epoch"), "epoch", 0)
        best = self.number(get("best_metric_last"), "best_metric_last")
        model_file = self.member(get("model_file"), "model_file")
        checksum = get("checksum")
        if checksum is not None and not isinstance(checksum, str):
            raise self.fail("checksum", f"must be a string, got {checksum!r}")
        elapsed = get("time_elapsed")
        return CkptInfo(
            epoch=epoch or 0,
            model_file=model_file,
            save_best_metric=self.string(get("save_best_metric"), "save_best_metric"),
            best_metric_last=best,
            checksum=checksum,
            timestamp=self.string(get("timestamp"), "timestamp"),
            time_elapsed=self.string(elapsed, "time_elapsed")
            if isinstance(elapsed, str)
            else self.number(elapsed, "time_elapsed"),
            metadata=self.string(get("metadata"), "metadata"),
            schema_version=self.integer(get("schema_version"), "schema_version"),
            epochs=None if get("epochs") is None else self.integer(get("epochs"), "epochs", 0),
            complete=self.flag(get("complete"), "complete"),
            best_epoch=self.integer(get("best_epoch"), "best_epoch"),
            best_mode=self.string(get("best_mode"), "best_mode"),
            position=self.position(get("position")),
            state_file=None if get("state_file") is None else self.member(get("state_file"), "state_file"),
            files=self.files(get("files")),
            writer=self.writer(get("writer")),
            origin=self.origin(get("origin")),
        )

    def origin(self, value: object) -> Origin | None:
        if value is None:
            return None
        try:
            return Origin.from_json(value, str(self.path), "origin")  # type: ignore[arg-type]
        except OriginError as exc:
            raise self.fail(exc.key, exc.problem) from None

    def position(self, value: object) -> Position | None:
        if value is None:
            return None
        if isinstance(value, dict):
            epoch, batch = value.get("epoch"), value.get("batch")
            if isinstance(epoch, int) and isinstance(batch, int) and _is_int(epoch) and _is_int(batch):
                return Position(epoch, batch)
        raise self.fail("position", f"must be null or {{epoch, batch}} integers, got {value!r}")

    def files(self, value: object) -> dict[str, FileEntry] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail("files", "must be an object of file name -> {size, crc32}")
        table: dict[str, FileEntry] = {}
        for name, entry in value.items():
            if not safe_relative(name):
                raise self.fail("files", f"names a path outside the checkpoint: {name!r}")
            size = entry.get("size") if isinstance(entry, dict) else None
            if not isinstance(size, int) or isinstance(size, bool):
                raise self.fail("files", f"entry {name!r} must have an integer size")
            crc = entry.get(ALGORITHM)
            if crc is not None and not isinstance(crc, str):
                raise self.fail("files", f"entry {name!r}: crc32 must be a string or null")
            table[name] = FileEntry(size, crc)
        return table

    def writer(self, value: object) -> dict[str, str | int] | None:
        if value is None:
            return None
        if isinstance(value, dict):
            ident = {k: v for k, v in value.items() if isinstance(v, str) or _is_int(v)}
            if len(ident) == len(value):
                return ident
        raise self.fail("writer", f"must be an object of strings and integers, got {value!r}")
