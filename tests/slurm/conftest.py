"""The local Slurm cluster for the Slurm tests: found, or started (as root), or a skip that says why.

Order: a cluster named by ``SLURM_CONF`` that answers ``sinfo``; else, as root
with ``apt-get``, ``tests/slurm/cluster/start.sh`` installs and starts one for
the session (and stops it at the end); else the tests skip with the reason.
With ``CANDLE_RESTART_REQUIRE_SLURM=1`` (set by CI) a skip becomes a failure.
``CANDLE_RESTART_NO_SLURM=1`` skips without trying to start anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CLUSTER = Path(__file__).parent / "cluster"
LOCAL_DIR = Path(os.environ.get("SLURM_LOCAL_DIR", "/tmp/candle-restart-slurm"))


def _answers(conf: str) -> bool:
    if not Path(conf).is_file() or shutil.which("sinfo") is None:
        return False
    proc = subprocess.run(
        ["sinfo", "-h"], env={**os.environ, "SLURM_CONF": conf}, capture_output=True, timeout=30
    )
    return proc.returncode == 0


def _start() -> str:
    """Start the cluster; return its SLURM_CONF or raise RuntimeError with the reason it cannot start."""
    if os.environ.get("CANDLE_RESTART_NO_SLURM") == "1":
        raise RuntimeError("CANDLE_RESTART_NO_SLURM=1")
    if os.geteuid() != 0:
        raise RuntimeError("no local Slurm: starting one needs root (slurmd launches jobs as any user)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        raise RuntimeError(
            "no local Slurm: Slurm is not installed and apt-get is not available to install it"
        )
    proc = subprocess.run(["bash", str(CLUSTER / "start.sh")], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"no local Slurm: start.sh failed: {(proc.stdout + proc.stderr)[-800:]}")
    return str(LOCAL_DIR / "etc" / "slurm.conf")


@pytest.fixture(scope="session")
def slurm_conf() -> Iterator[str]:
    """The SLURM_CONF of a running local cluster, exported for the session."""
    conf = os.environ.get("SLURM_CONF") or str(LOCAL_DIR / "etc" / "slurm.conf")
    started = False
    if not _answers(conf):
        try:
            conf, started = _start(), True
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            if os.environ.get("CANDLE_RESTART_REQUIRE_SLURM") == "1":
                pytest.fail(f"Slurm is required here (CANDLE_RESTART_REQUIRE_SLURM=1): {exc}")
            pytest.skip(str(exc))
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield conf
    if previous is None:
        del os.environ["SLURM_CONF"]
    if started:
        subprocess.run(["bash", str(CLUSTER / "stop.sh")], capture_output=True, timeout=300)
