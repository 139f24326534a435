"""pytest fixtures for the fault filesystem and the second host (loaded for all tests by
``tests/conftest.py``).

``faultfs``: a fault filesystem mounted at ``tmp_path/faultfs`` over ``tmp_path/faultfs-backing``,
unmounted and its process ended (by PID) after the test, even when it fails. ``second_host``: a ``Host`` named
``node-b``; processes it started and left running are killed after the test.

Where they cannot be used (not root, no /dev/fuse, no fuse3 or mfusepy, no UTS namespaces) the
test is skipped with the reason; with ``CANDLE_RESTART_REQUIRE_FUSE=1`` (set by CI) it fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NoReturn

import pytest

from tests.faultfs.control import FaultFS, FaultFSError, fuse_unavailable, mount_faultfs
from tests.faultfs.host import Host, second_host_unavailable

REQUIRE_FUSE = "CANDLE_RESTART_REQUIRE_FUSE"


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail when ``CANDLE_RESTART_REQUIRE_FUSE=1``."""
    if os.environ.get(REQUIRE_FUSE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_FUSE}=1")
    pytest.skip(f"{reason}; set {REQUIRE_FUSE}=1 to make this a failure")


@pytest.fixture
def faultfs(tmp_path: Path) -> Iterator[FaultFS]:
    """A mounted fault filesystem (see ``tests/faultfs/control.py`` for its controls)."""
    reason = fuse_unavailable()
    if reason:
        unavailable(reason)
    with ExitStack() as stack:
        try:
            fs = stack.enter_context(mount_faultfs(tmp_path / "faultfs-backing", tmp_path / "faultfs"))
        except FaultFSError as exc:
            unavailable(f"the fault filesystem cannot be mounted here: {exc}")
        yield fs


@pytest.fixture
def second_host() -> Iterator[Host]:
    """Another host, ``node-b``: same machine, mounts and PIDs; its own host name."""
    reason = second_host_unavailable()
    if reason:
        unavailable(reason)
    host = Host("node-b")
    try:
        yield host
    finally:
        host.close()
