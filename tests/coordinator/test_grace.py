"""The first-sight record of `candle_restart.coordinator.grace`: a wait measured on this host's clock."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from candle_restart.coordinator.grace import seen_for
from tests.helpers import toy_task


def test_a_sighting_is_kept_on_this_hosts_clock_and_a_garbage_one_replaced(tmp_path: Path) -> None:
    task = toy_task(tmp_path / "run", "seen")
    assert seen_for(task, "submission 1 without outcome", now=1000.0) == 0.0
    assert seen_for(task, "submission 1 without outcome", now=1060.0) == 60.0  # a later pass
    [path] = (task.path / ".seen").iterdir()
    path.write_text('{"host": [1], "what": "x", "since": 1e309}')  # garbage: not a sighting
    assert seen_for(task, "submission 2 without outcome", now=2000.0) == 0.0  # something new: first sight
    assert json.loads(path.read_text()) == {"host": socket.gethostname(), "what": "submission 2 without outcome", "since": 2000.0}
