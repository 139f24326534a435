"""Test tools: a FUSE fault filesystem (``control.py``, served by ``server.py``) and a second host
(``host.py``); their pytest fixtures ``faultfs`` and ``second_host`` are in ``fixtures.py``."""

from tests.faultfs.control import FaultFS, FaultFSError, fuse_unavailable, mount_faultfs
from tests.faultfs.host import Host, host_command, second_host_unavailable

__all__ = [
    "FaultFS",
    "FaultFSError",
    "Host",
    "fuse_unavailable",
    "host_command",
    "mount_faultfs",
    "second_host_unavailable",
]
