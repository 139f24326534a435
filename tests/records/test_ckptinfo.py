"""`CkptInfo`: one reader and writer of ``ckpt-info.json`` for our files and CANDLE's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from candle_restart.errors import CorruptCheckpointError
from candle_restart.records.ckptinfo import CkptInfo, FileEntry, Position, read_ckpt_info

# Written by the callback before the record existed (epoch end, checksums off) ...
AT_EPOCH_END = """{
 "epoch": 2,
 "save_best_metric": "val_loss",
 "best_metric_last": 0.5,
 "model_file": "model.bin",
 "checksum": "__DISABLED__",
 "timestamp": "2026-11-30 23:28:12",
 "time_elapsed": 0.034603,
 "metadata": null,
 "schema_version": 1,
 "epochs": 3,
 "complete": false,
 "best_epoch": 1,
 "best_mode": "min",
 "position": null,
 "state_file": null,
 "files": {
  "model.bin": {
   "size": 3,
   "crc32": null
  }
 },
 "writer": {
  "host": "vm",
  "pid": 3493
 }
}
"""
# ... and inside an epoch, checksummed, with the Keras backend's state file and Slurm ids.
MID_EPOCH = """{
 "epoch": 2,
 "save_best_metric": "val_loss",
 "best_metric_last": null,
 "model_file": "model.keras",
 "checksum": "891568578",
 "timestamp": "2026-11-30 23:28:12",
 "time_elapsed": "__FIRST__",
 "metadata": "m",
 "schema_version": 1,
 "epochs": 3,
 "complete": false,
 "best_epoch": null,
 "best_mode": null,
 "position": {
  "epoch": 3,
  "batch": 4
 },
 "state_file": "train_state.npz",
 "files": {
  "model.keras": {
   "size": 3,
   "crc32": "891568578"
  },
  "train_state.npz": {
   "size": 10,
   "crc32": "7"
  }
 },
 "writer": {
  "host": "vm",
  "pid": 3493,
  "job_id": "12",
  "array_task_id": "3"
 }
}
"""
CANDLES = (
    '{"epoch": 2, "save_best_metric": "val_loss", "best_metric_last": Infinity, "model_file": "model.h5", '
    '"checksum": "123", "timestamp": "2024-01-01 00:00:00", "time_elapsed": "__FIRST__", "metadata": null}\n'
)


@pytest.mark.parametrize("text", [AT_EPOCH_END, MID_EPOCH])
def test_files_written_before_read_and_write_back_byte_for_byte(text: str) -> None:
    info = CkptInfo.from_json(json.loads(text), "ckpt-info.json")
    assert info.to_bytes() == text.encode()


def test_the_fields_are_typed() -> None:
    info = CkptInfo.from_json(json.loads(MID_EPOCH), "ckpt-info.json")
    assert info.position == Position(3, 4) and info.epoch == 2 and info.complete is False
    assert info.files is not None and info.files["train_state.npz"] == FileEntry(10, "7")
    assert info.writer == {"host": "vm", "pid": 3493, "job_id": "12", "array_task_id": "3"}
    assert info.time_elapsed == "__FIRST__" and info.best_metric_last is None


def test_candles_file_reads_and_restart_returns_candles_dict(tmp_path: Path) -> None:
    path = tmp_path / "ckpt-info.json"
    path.write_text(CANDLES)
    info = read_ckpt_info(path)
    assert info.schema_version is None and info.files is None and info.best_epoch is None
    assert info.best_metric_last == math.inf
    assert info.to_dict() == json.loads(CANDLES)  # CANDLE's keys only, Infinity as read
    assert b"Infinity" not in info.to_bytes() and info.to_json()["best_metric_last"] is None


def test_missing_keys_of_candles_are_none() -> None:
    info = CkptInfo.from_json({"epoch": 0, "model_file": "m.h5"}, "ckpt-info.json")
    assert (info.checksum, info.timestamp, info.save_best_metric, info.metadata) == (None, None, None, None)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"epoch": -1}, "ckpt-info.json: epoch: must be an integer >= 0, got -1"),
        ({"epoch": True}, "ckpt-info.json: epoch: must be an integer >= 0, got True"),
        ({"best_metric_last": "low"}, "best_metric_last: must be a number or null, got 'low'"),
        ({"model_file": "/etc/passwd"}, "model_file: must be a file name inside the checkpoint"),
        ({"checksum": 5}, "checksum: must be a string, got 5"),
        ({"complete": "yes"}, "complete: must be true, false or null, got 'yes'"),
        ({"position": {"epoch": 1}}, "position: must be null or {epoch, batch} integers"),
        ({"files": {"../x": {"size": 1}}}, "files: names a path outside the checkpoint: '../x'"),
        ({"files": {"x": {"size": "1"}}}, "files: entry 'x' must have an integer size"),
        ({"files": {"x": {"size": 1, "crc32": 1}}}, "files: entry 'x': crc32 must be a string or null"),
        ({"writer": {"host": ["a"]}}, "writer: must be an object of strings and integers"),
        ({"state_file": "../s.npz"}, "state_file: must be a file name inside the checkpoint"),
    ],
)
def test_a_bad_key_is_one_line_naming_file_and_key(change: dict[str, object], fragment: str) -> None:
    data = {**json.loads(AT_EPOCH_END), **change}
    with pytest.raises(CorruptCheckpointError) as err:
        CkptInfo.from_json(data, "ckpt-info.json")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_reading_missing_garbage_and_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "ckpt-info.json"
    with pytest.raises(CorruptCheckpointError, match=r"ckpt-info\.json: is missing"):
        read_ckpt_info(path)
    path.write_text("[1]")
    with pytest.raises(CorruptCheckpointError, match="must hold a JSON object, got list"):
        read_ckpt_info(path)
    path.unlink()
    path.mkdir()  # reading a directory fails with EISDIR: the content's fault, not a transient error
    with pytest.raises(CorruptCheckpointError):
        read_ckpt_info(path)


def test_unknown_keys_are_ignored() -> None:
    info = CkptInfo.from_json({**json.loads(AT_EPOCH_END), "future_key": [1]}, "ckpt-info.json")
    assert info.to_bytes() == AT_EPOCH_END.encode()
