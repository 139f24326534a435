"""The safe JSON reader on hostile text (issue 27, item 3): linear whatever the text holds, with a
size cap that is a one-line error.  No timing here (``bench/json_hostile.py`` measures it): each
hostile text of 1 MB must simply come back with the right answer (before the fix, a run of quotes
that never close made the depth check quadratic: 1 MB took more than an hour), and what is over
the caps is refused in one line."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candle_restart.records import journal
from candle_restart.records.journal import MAX_LINE_CHARS, START, JournalEvent
from candle_restart.records.jsonio import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    JsonError,
    JsonFileError,
    loads,
    read_json,
    too_deep,
)

MB = 1_000_000

# Each: 1 MB of text; whether it nests deeper than MAX_DEPTH outside strings; whether it is JSON.
HOSTILE = {
    # quotes that never close (each escaped): the depth check's old pattern scanned to the end
    # from every one of them, so these took hours (32 KB: 5 s; 1 MB: about 1.5 h)
    "escaped quotes never closed, deep": ("[" * 65 + '"\\' * (MB // 2), True, False),
    "escaped quotes never closed, shallow": ("[" * 30 + '"[]",' * 40 + '"\\' * (MB // 2), False, False),
    "unclosed quotes": ('"' * MB, False, False),
    "escaped quotes, a backslash last": ('"\\"' * (MB // 3) + "\\", False, False),
    "brackets after one unclosed quote": ('"' + "[" * (MB - 1), False, False),
    "brackets inside many strings": ("[" + '"[{[{",' * (MB // 7) + '""]', False, True),
    "quote-bracket runs": ('["[' * (MB // 3), True, False),
    "deep outside strings": ("[" * MB, True, False),
    "shallow pairs": ("[" + "[]," * (MB // 3) + "[]]", False, True),
    "digit runs of 100": ("[" + ("1" * 100 + ",") * (MB // 101) + "1]", False, True),
}


def _depth_exceeds(text: str) -> bool:
    """The reference: a character-by-character scanner (slow, obviously right)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_megabyte_texts_are_answered(case: str) -> None:
    text, deep, valid = HOSTILE[case]
    assert _depth_exceeds(text) is deep  # the case is what it says
    assert too_deep(text) is deep
    if valid:
        assert isinstance(loads(text), list)
        return
    with pytest.raises(JsonError) as refused:
        loads(text)
    assert "\n" not in str(refused.value)
    assert ("more than 64 deep" in str(refused.value)) is deep


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='[]{}"\\ a1', min_size=0, max_size=400).map(lambda t: "[" * 60 + t))
def test_depth_check_agrees_with_a_plain_scanner(text: str) -> None:
    assert too_deep(text) is _depth_exceeds(text)


def test_text_over_the_cap_is_one_line() -> None:
    with pytest.raises(JsonError, match=rf"^is {MAX_TEXT_CHARS + 1} characters long \(at most {MAX_TEXT_CHARS}\)$"):
        loads(" " * (MAX_TEXT_CHARS + 1))


def test_file_over_the_cap_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(JsonFileError) as refused:
        read_json(path)
    assert str(refused.value) == f"{path}: is larger than {MAX_FILE_BYTES} bytes"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO named like a record would block its reader until someone writes (here: never)."""
    path = tmp_path / "state.json"
    os.mkfifo(path)
    answer: list[str] = []

    def read() -> None:
        try:
            read_json(path)
        except JsonFileError as exc:
            answer.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)  # before the fix it blocks for ever
    reader.start()
    reader.join(60)  # a bound on a hang, not a timing: the answer comes at once or never
    assert answer == [f"{path}: is not a regular file"]


def test_a_hostile_journal_line_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal.append(path, JournalEvent(START, attempt=1))
    with open(path, "a") as f:
        f.write('"' * MB + "\n")  # under the line cap: parsed, refused, skipped
        f.write("[" * (MAX_LINE_CHARS + 1) + "\n")  # over it: skipped unparsed
    journal.append(path, JournalEvent(START, attempt=2))
    assert [e.attempt for e in journal.read_file(path)] == [1, 2]


def test_a_line_the_reader_would_skip_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    journal.append(path, JournalEvent(START, attempt=1, reason="x" * (MAX_LINE_CHARS + 10)))
    [event] = journal.read_file(path)
    assert event.attempt == 1 and event.reason is not None and event.reason.endswith(" [cut]")
