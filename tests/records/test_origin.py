"""A warm start's ``origin`` record through the one field check: each malformed field is one error
naming the file and the key (nested under ``origin`` inside ``ckpt-info.json``)."""

from __future__ import annotations

import pytest

from candle_restart.records.jsontypes import JsonValue
from candle_restart.records.origin import Origin, OriginError

GOOD: dict[str, JsonValue] = {
    "parent": "base-1",
    "parent_path": "/runs/base-1",
    "epoch": 2,
    "position": {"epoch": 3, "batch": 7},
    "checksum": "123",
    "key": None,
    "time": "2026-12-07T00:00:00Z",
}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"parent": 5}, "parent"),
        ({"parent_path": None}, "parent_path"),
        ({"epoch": -1}, "epoch"),
        ({"epoch": True}, "epoch"),
        ({"position": [3, 7]}, "position"),
        ({"position": {"epoch": 3, "batch": "7"}}, "position.batch"),
        ({"checksum": 123}, "checksum"),
        ({"time": None}, "time"),
    ],
)
def test_a_malformed_origin_names_its_key(change: dict[str, JsonValue], key: str) -> None:
    with pytest.raises(OriginError, match=rf"^f\.json: origin\.{key}: "):
        Origin.from_json({**GOOD, **change}, "f.json", "origin")
    with pytest.raises(OriginError, match=rf"^f\.json: {key}: "):
        Origin.from_json({**GOOD, **change}, "f.json")


def test_an_origin_reads_back_what_it_wrote() -> None:
    origin = Origin.from_json(GOOD, "f.json")
    assert origin.position == (3, 7) and Origin.from_json(origin.to_json(), "f.json") == origin
    with pytest.raises(OriginError, match=r"^f\.json: origin: must be a JSON object"):
        Origin.from_json([], "f.json", "origin")
