"""The promises on a shared filesystem that misbehaves: the fault filesystem and a second host.

* A transient I/O error (EIO, ESTALE, EACCES) on the newest checkpoint never
  sets it aside: restart retries, then stops with one line; once the fault
  clears, restart loads that newest checkpoint.
* The writer lease across hosts: a live holder on this host is never taken
  over from another host; after it is killed, the other host takes over only
  once the lease has run out since the holder's last heartbeat.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from candle_restart.ckpt import CkptLayout
from candle_restart.errors import CheckpointIOError
from tests.faultfs.control import FaultFS
from tests.faultfs.host import Host
from tests.helpers import ROOT, BytesCkpt, BytesModel, report, runner_env

LEASE = 2.0  # a loaded machine stalls the heartbeat thread for a second at times


def _write(directory: Path, epochs: int) -> None:
    ckpt = BytesCkpt({"epochs": 10, "ckpt_directory": str(directory), "ckpt_checksum": True}, logger=None)
    model = BytesModel()
    ckpt.set_model(model)
    for epoch in range(epochs):
        model.payload = f"epoch {epoch + 1}".encode()
        ckpt.ckpt_epoch(epoch, "-", 1.0 / (epoch + 1))
    ckpt.release_writer()


def _restart(directory: Path, lines: list[str]) -> bytes | None:
    """Restart a fresh writer from ``directory``; the payload it loaded (None: nothing)."""
    ckpt = BytesCkpt({"epochs": 10, "ckpt_directory": str(directory)}, logger=None)
    ckpt.info = lines.append  # type: ignore[method-assign, assignment]
    model = BytesModel()
    try:
        return model.payload if ckpt.restart(model) is not None else None
    finally:
        ckpt.release_writer()


def _names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory / "epochs"))


@pytest.mark.parametrize(
    ("error", "target"), [("EIO", "ckpt-info.json"), ("ESTALE", "model.bin"), ("EACCES", "*")]
)
def test_a_persistent_io_error_sets_nothing_aside_and_restart_loads_the_newest_once_it_clears(
    faultfs: FaultFS, error: str, target: str
) -> None:
    directory = faultfs.path("ckpts")
    _write(directory, 3)
    before = _names(directory)
    rule = faultfs.fail(f"ckpts/epochs/003/{target}", error, ops=["open", "read", "stat"])
    lines: list[str] = []
    with pytest.raises(CheckpointIOError) as failure:
        _restart(directory, lines)
    message = str(failure.value)
    assert "\n" not in message and "epochs/003" in message and "nothing was set aside" in message
    assert sum("trying again" in line for line in lines) >= 3  # retried with backoff before giving up
    faultfs.clear(rule)
    assert _names(directory) == before  # nothing renamed, nothing deleted
    assert CkptLayout.at(directory).linked_epoch(CkptLayout.at(directory).last) == 3
    assert _restart(directory, []) == b"epoch 3"
    report(f"transient {error} on the newest checkpoint", set_aside=0, loaded_newest=1)


def test_an_io_error_that_comes_and_goes_is_ridden_out(faultfs: FaultFS) -> None:
    directory = faultfs.path("ckpts")
    _write(directory, 3)
    faultfs.fail("ckpts/epochs/003/ckpt-info.json", "EIO", ops=["open", "read"], count=2)
    lines: list[str] = []
    assert _restart(directory, lines) == b"epoch 3"
    assert sum("trying again" in line for line in lines) == 2
    assert not [n for n in _names(directory) if "corrupt" in n]


def _writer(host: Host | None, directory: Path, tag: str, epochs: int | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.programs.lease_writer", str(directory), tag]
    if epochs is not None:
        argv.append(str(epochs))
    popen: dict[str, Any] = {
        "cwd": ROOT,
        "env": {**runner_env(), "CANDLE_RESTART_LEASE_SECONDS": str(LEASE)},
        "text": True,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
    }
    return host.spawn(argv, **popen) if host else subprocess.Popen(argv, **popen)


def test_the_writer_lease_across_hosts_on_the_fault_filesystem(faultfs: FaultFS, second_host: Host) -> None:
    directory = faultfs.path("ckpts")
    holder = _writer(None, directory, "here")
    assert holder.stdout is not None
    while not holder.stdout.readline().startswith("committed 2"):
        assert holder.poll() is None
    # A live holder on this host: the other host waits out 1.5 leases, sees it refreshed, gives up.
    refused = _writer(second_host, directory, "there")
    out, _err = refused.communicate(timeout=60)
    assert refused.returncode == 3 and f"pid {holder.pid}" in out, out
    holder.kill()
    holder.wait()
    marker = directory / ".writer.lock"
    last_heartbeat = marker.stat().st_mtime
    newest = CkptLayout.at(directory).linked_epoch(CkptLayout.at(directory).last)
    assert newest is not None
    taker = _writer(second_host, directory, "there", epochs=newest + 1)
    out, _err = taker.communicate(timeout=60)
    assert taker.returncode == 0 and out.splitlines()[0] == f"resumed {newest}", out
    info = (CkptLayout.at(directory).epoch_dir(newest + 1) / "ckpt-info.json").read_text()
    taken_at = (CkptLayout.at(directory).epoch_dir(newest + 1) / "ckpt-info.json").stat().st_mtime
    assert '"metadata": "there"' in info
    # It could not have written before the lease ran out since the holder's last heartbeat.
    assert taken_at >= last_heartbeat + LEASE - 0.05
    report("writer lease across hosts", taken_from_live_holder=0, taken_before_lease=0)
