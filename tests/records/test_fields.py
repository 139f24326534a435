"""The one field check of the records: typed values, or one line naming the file and the key."""

from __future__ import annotations

import pytest

from candle_restart.errors import CkptError
from candle_restart.records.fields import MAX_PROBLEM, Fields


class RecordError(CkptError):
    pass


CHECK = Fields("run/t/state.json", RecordError)


def test_values_of_the_right_type_come_back_typed() -> None:
    assert CHECK.integer(3, "n", 0) == 3 and CHECK.opt_integer(None, "n") is None
    assert CHECK.number(2, "x") == 2.0 and isinstance(CHECK.number(2, "x"), float)
    assert CHECK.strings(["a"], "l") == ["a"] and CHECK.opt_strings(None, "l") is None
    assert CHECK.choice("max", "mode", ("min", "max")) == "max"
    assert CHECK.obj({"a": 1}) == {"a": 1} and CHECK.flag(False, "f") is False


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: CHECK.integer(True, "pid"), "run/t/state.json: pid: must be an integer, got True"),
        (lambda: CHECK.integer(-1, ("metric", "best_epoch"), 0), "run/t/state.json: metric.best_epoch: must be an integer >= 0, got -1"),
        (lambda: CHECK.opt_number("1.5", "best"), "run/t/state.json: best: must be a number or null, got '1.5'"),
        (lambda: CHECK.obj([1]), "run/t/state.json: must be a JSON object, got list"),
        (lambda: CHECK.choice(None, "status", ("running",)), "run/t/state.json: status: missing or not a string"),
        (lambda: CHECK.choice("x", "status", ("running",)), "run/t/state.json: status: unknown value 'x' (expected one of running)"),
        (lambda: CHECK.string("", "host", nonempty=True), "run/t/state.json: host: must be a non-empty string, got ''"),
    ],
)
def test_a_wrong_value_is_the_records_error_in_one_line(check: object, message: str) -> None:
    with pytest.raises(RecordError) as refused:
        check()  # type: ignore[operator]
    assert str(refused.value) == message


def test_a_long_or_multi_line_value_is_cut_to_one_line() -> None:
    with pytest.raises(RecordError) as refused:
        CHECK.string(["x\ny"] * 1000, "reason")
    problem = refused.value.problem
    assert "\n" not in str(refused.value) and len(problem) == MAX_PROBLEM and refused.value.key == "reason"
