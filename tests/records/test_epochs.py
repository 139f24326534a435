"""``ckpts/events.jsonl``: the records module's writer and reader, on real files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from candle_restart.records.epochs import (
    EVENTS_FILE,
    EpochEvent,
    EventFileError,
    append_event,
    count_events,
    event_line,
    read_events,
)

T = "2026-01-01T00:00:00.000+00:00"


def _json(text: str) -> str:
    """``text`` with its time placeholder ``%s`` filled in."""
    return text.replace("%s", T)


ONE_OF_EACH = [
    EpochEvent(kind="restart", time=T),
    EpochEvent(
        kind="epoch", time=T, epoch=1, metric="val_loss", value=0.5, mode="min", metrics={"loss": 0.25}
    ),
    EpochEvent(kind="disabled", time=T, epoch=1, until=3),
    EpochEvent(
        kind="commit",
        time=T,
        epoch=2,
        path="epochs/002",
        position={"epoch": 2, "batch": 7},
        bytes=1234,
        write_seconds=0.5,
        blocked_seconds=0.125,
        reason="midepoch",
        taken=T,
    ),
    EpochEvent(
        kind="restart",
        time=T,
        epoch=1,
        path="epochs/002",
        position={"epoch": 2, "batch": 7},
        via="last",
        seconds=0.25,
    ),
    EpochEvent(
        kind="set_aside", time=T, path="epochs/003", aside="epochs/003.corrupt-x", problem="checksum mismatch"
    ),
    EpochEvent(kind="train_start", time=T),
]


def _strict(text: str) -> list[object]:
    """Parse each line as strict JSON: NaN and Infinity are refused."""

    def refuse(token: str) -> None:
        raise AssertionError(f"non-strict JSON token {token}")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]


def test_every_kind_round_trips(tmp_path: Path) -> None:
    for event in ONE_OF_EACH:
        append_event(tmp_path, event)
    assert read_events(tmp_path) == ONE_OF_EACH
    lines = _strict((tmp_path / EVENTS_FILE).read_text())
    assert [line["kind"] for line in lines] == [e.kind for e in ONE_OF_EACH]  # type: ignore[index]
    assert lines[0] == {  # a fresh start: the restart fields are there, null
        "kind": "restart",
        "time": T,
        "schema_version": 1,
        "epoch": None,
        "path": None,
        "position": None,
        "via": None,
        "seconds": None,
    }
    assert lines[-1] == {"kind": "train_start", "time": T, "schema_version": 1}
    assert count_events(tmp_path, "restart") == 2 and count_events(tmp_path, "commit") == 1


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    event = EpochEvent(
        kind="epoch",
        time=T,
        epoch=3,
        metric="val_loss",
        value=math.nan,
        mode="min",
        metrics={"loss": math.inf, "acc": -math.inf, "lr": 0.01},
    )
    append_event(tmp_path, event)
    text = (tmp_path / EVENTS_FILE).read_text()
    [line] = _strict(text)
    assert line["value"] is None and line["metrics"] == {"loss": None, "acc": None, "lr": 0.01}  # type: ignore[index]
    [back] = read_events(tmp_path)
    assert back.value is None and back.metrics == {"loss": None, "acc": None, "lr": 0.01}


def test_non_finite_numbers_another_writer_left_read_as_none(tmp_path: Path) -> None:
    line = {
        "kind": "epoch",
        "time": T,
        "epoch": 1,
        "metric": "m",
        "value": math.nan,
        "metrics": {"a": math.inf},
    }
    (tmp_path / EVENTS_FILE).write_text(json.dumps(line) + "\n")  # Python's json writes NaN, Infinity
    assert "NaN" in (tmp_path / EVENTS_FILE).read_text()
    [event] = read_events(tmp_path)
    assert event.value is None and event.metrics == {"a": None}


def test_a_torn_last_line_is_skipped_and_the_next_event_starts_a_line_of_its_own(tmp_path: Path) -> None:
    first, second, third = ONE_OF_EACH[1], ONE_OF_EACH[3], ONE_OF_EACH[4]
    append_event(tmp_path, first)
    torn = event_line(second)[:-9]  # a writer killed in the middle of its line
    with open(tmp_path / EVENTS_FILE, "ab") as f:
        f.write(torn)
    assert read_events(tmp_path) == [first]
    append_event(tmp_path, third)  # the next process's first event
    text = (tmp_path / EVENTS_FILE).read_bytes()
    assert text == event_line(first) + torn + b"\n" + event_line(third)
    assert read_events(tmp_path) == [first, third]  # the torn line, now in the middle, is skipped too


def test_a_missing_file_has_no_events(tmp_path: Path) -> None:
    assert read_events(tmp_path) == [] and count_events(tmp_path, "commit") == 0


def test_an_unknown_kind_from_a_newer_writer_is_skipped(tmp_path: Path) -> None:
    lines = [
        {"kind": "tier_drained", "time": T, "epoch": 4},
        {"kind": "disabled", "time": T, "epoch": 1, "until": 2},
    ]
    (tmp_path / EVENTS_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert read_events(tmp_path) == [EpochEvent(kind="disabled", time=T, epoch=1, until=2)]


@pytest.mark.parametrize(
    ("line", "key", "problem"),
    [
        (_json('{"kind":"epoch","time":"%s","epoch":"3"}'), "epoch", "must be an integer >= 0, got '3'"),
        (_json('{"kind":"epoch","time":"%s","epoch":true}'), "epoch", "must be an integer >= 0, got True"),
        (_json('{"kind":"epoch","time":"%s"}'), "epoch", "is required in epoch events"),
        (
            _json('{"kind":"commit","time":"%s","epoch":2,"path":"epochs/002","reason":"whim"}'),
            "reason",
            "unknown value 'whim' (expected one of",
        ),
        (_json('{"kind":"epoch","time":"%s","epoch":2,"mode":"up"}'), "mode", "unknown value 'up' (expected one of min, max)"),
        (
            _json('{"kind":"epoch","time":"%s","epoch":2,"metrics":{"a":"x"}}'),
            "metrics",
            "must be an object of numbers, got {'a': 'x'}",
        ),
        (_json('{"kind":"restart","time":"%s","position":{"epoch":2}}'), "position", "must be {epoch, batch} integers, got"),
        ('{"kind":"restart","time":5}', "time", "must be a string, got 5"),
        ("[1, 2]", None, "must be a JSON object, got list"),
    ],
)
def test_a_malformed_event_is_one_line_naming_file_line_and_key(
    tmp_path: Path, line: str, key: str | None, problem: str
) -> None:
    path = tmp_path / EVENTS_FILE
    path.write_text(event_line(ONE_OF_EACH[0]).decode() + line + "\n")
    before = path.read_bytes()
    with pytest.raises(EventFileError) as caught:
        read_events(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line 2: ") and "\n" not in message
    assert caught.value.key == key and problem in message
    assert path.read_bytes() == before  # nothing on disk changes
    assert count_events(tmp_path, "restart") >= 1  # the polling count never raises


def test_appending_into_a_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        append_event(tmp_path / "missing", ONE_OF_EACH[0])
