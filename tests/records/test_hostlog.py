"""``.hosts.jsonl`` lines through the one field check: each malformed line is one error naming the key,
and `read_clears` skips it (real files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from candle_restart.records.hostlog import HOSTS_FILE, HostsCleared, HostsFileError, read_clears
from candle_restart.records.jsontypes import JsonValue

GOOD: dict[str, JsonValue] = {"event": "hosts_cleared", "time": "2026-12-07T00:00:00Z", "hosts": ["n1"], "by": {}}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"event": "hosts_added"}, "event"),
        ({"time": 7}, "time"),
        ({"hosts": "n1"}, "hosts"),
        ({"hosts": ["n1", 2]}, "hosts"),
        ({"by": []}, "by"),
    ],
)
def test_a_malformed_clear_names_its_key_and_is_skipped(tmp_path: Path, change: dict[str, JsonValue], key: str) -> None:
    bad = {**GOOD, **change}
    with pytest.raises(HostsFileError, match=rf"^f:3: {key}: "):
        HostsCleared.from_json(bad, "f:3")
    (tmp_path / HOSTS_FILE).write_text(json.dumps(GOOD) + "\n" + json.dumps(bad) + "\n")
    assert read_clears(tmp_path) == [HostsCleared("2026-12-07T00:00:00Z", ("n1",), {})]


def test_null_hosts_clears_every_host() -> None:
    assert HostsCleared.from_json({**GOOD, "hosts": None}, "f:1").hosts is None
