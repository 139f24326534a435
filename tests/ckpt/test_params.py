"""gParameters: CANDLE's defaults, command-line strings, and one clear error per bad value."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from candle_restart.ckpt import ParamError, ckpt_defs, ckpt_parser, parse_params


def test_defaults_follow_candle_and_the_issue() -> None:
    p = parse_params({"epochs": 3})
    assert (p.restart_mode, p.save_best, p.save_best_metric) == ("auto", True, "val_loss")
    assert (p.skip_epochs, p.save_interval, p.checksum) == (0, 1, False)
    assert (p.keep_mode, p.keep_limit) == ("linear", 5)
    assert p.directory.endswith("save/ckpts")
    assert parse_params({"epochs": 3, "output_dir": "/x/out"}).directory == "/x/out/ckpts"


def test_strings_from_the_command_line_convert_like_candle() -> None:
    p = parse_params(
        {
            "epochs": "4",
            "ckpt_checksum": "True",
            "ckpt_save_best": "0",
            "ckpt_keep_limit": "2",
            "ckpt_best_metric_last": "0.5",
            "ckpt_metadata": 17,
        }
    )
    assert (p.epochs, p.checksum, p.save_best, p.keep_limit) == (4, True, False, 2)
    assert p.best_metric_last == 0.5
    assert p.metadata == "17"


@pytest.mark.parametrize(
    "key, value, field, expected",
    [
        # A choice in any case, with blanks around it, is stored as the canonical lower-case choice.
        ("ckpt_restart_mode", "AUTO", "restart_mode", "auto"),
        ("ckpt_restart_mode", " Required ", "restart_mode", "required"),
        ("ckpt_keep_mode", "LINEAR", "keep_mode", "linear"),
        ("ckpt_keep_mode", "Exponential\n", "keep_mode", "exponential"),
        ("ckpt_save_best_mode", "MAX", "save_best_mode", "max"),
        ("ckpt_stdout_format", "TimeStamped", "stdout_format", "timestamped"),
        ("ckpt_model_format", "H5", "model_format", "h5"),
        # A string with an integral value counts as that integer, as the float 3.0 already does.
        ("epochs", "3.0", "epochs", 3),
        ("ckpt_keep_limit", "2.0", "keep_limit", 2),
        ("ckpt_save_interval", " 4.00 ", "save_interval", 4),
        ("ckpt_skip_epochs", "-0.0", "skip_epochs", 0),
        ("ckpt_save_batches", "1e3", "save_batches", 1000),
        ("ckpt_save_batches", "0e19", "save_batches", 0),  # a zero, whatever its exponent
        ("ckpt_save_batches", "99999999999999999.0", "save_batches", 99999999999999999),  # exact, not a float's
    ],
)
def test_lenient_spellings_are_read_as_the_canonical_value(
    key: str, value: object, field: str, expected: object
) -> None:
    params = {"epochs": 3, key: value}
    settings = parse_params(params)
    assert getattr(settings, field) == expected
    assert type(getattr(settings, field)) is type(expected)
    assert params[key] == value  # the caller's mapping keeps its spelling


def test_numpy_integers_are_integers() -> None:
    assert parse_params({"epochs": np.int64(7), "ckpt_skip_epochs": np.int32(2)}).skip_epochs == 2


def test_callers_dict_is_not_mutated() -> None:
    params = {"epochs": "3", "ckpt_checksum": "true"}
    before = dict(params)
    parse_params(params)
    assert params == before


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("ckpt_keep_limit", 0, "integer >= 1"),
        ("ckpt_keep_limit", "many", "integer >= 1"),
        ("ckpt_save_interval", -1, "integer >= 0"),
        ("ckpt_skip_epochs", 1.5, "integer >= 0"),
        ("ckpt_checksum", "perhaps", "boolean"),
        ("ckpt_save_best", [True], "boolean"),
        ("ckpt_restart_mode", "sometimes", "off|auto|required"),
        ("ckpt_keep_mode", "fibonacci", "linear|exponential|all"),
        ("ckpt_save_best_mode", "up", "auto|min|max"),
        ("ckpt_best_metric_last", "low", "a number"),
        ("ckpt_best_metric_last", float("nan"), "NaN"),
        ("ckpt_directory", {"a": 1}, "a string"),
        ("epochs", True, "integer >= 0"),
        ("epochs", "-2", "integer >= 0"),
        # Integers: a non-integral value, a word, a boolean, a non-finite or too long number.
        ("epochs", "3.5", "integer >= 0, got '3.5'"),
        ("epochs", 3.5, "integer >= 0, got 3.5"),
        ("epochs", "abc", "integer >= 0, got 'abc'"),
        ("epochs", "True", "integer >= 0"),
        ("ckpt_keep_limit", True, "integer >= 1, got True"),
        ("ckpt_keep_limit", "0.0", "integer >= 1, got '0.0'"),
        ("ckpt_keep_limit", "2.000001", "integer >= 1"),
        ("ckpt_save_interval", "-1.0", "integer >= 0"),
        ("ckpt_save_interval", "inf", "integer >= 0"),
        ("ckpt_save_interval", "nan", "integer >= 0"),
        ("ckpt_save_interval", "", "integer >= 0"),
        ("ckpt_save_batches", "1e30", "of at most 18 digits"),
        ("ckpt_save_batches", "1e999999999", "of at most 18 digits"),
        ("ckpt_save_batches", "1__0", "integer >= 0"),  # Decimal takes it, int() does not
        # Choices: still only the allowed words, whatever their case; the error quotes the value given.
        ("ckpt_restart_mode", "AUTOMATIC", "off|auto|required, got 'AUTOMATIC'"),
        ("ckpt_keep_mode", "LIN EAR", "linear|exponential|all"),
        ("ckpt_save_best_mode", "", "auto|min|max"),
    ],
)
def test_bad_values_name_the_key(key: str, value: object, fragment: str) -> None:
    with pytest.raises(ParamError) as err:
        parse_params({"epochs": 3, key: value})
    message = str(err.value)
    assert message.startswith(f"gParameters: {key}: ")
    assert fragment in message
    assert "\n" not in message
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)


def test_epochs_is_required() -> None:
    with pytest.raises(ParamError, match="gParameters: epochs: is required"):
        parse_params({"ckpt_checksum": True})


def test_ckpt_parser_and_defs_offer_the_same_options() -> None:
    parser = ckpt_parser(argparse.ArgumentParser())
    args = parser.parse_args(["--ckpt_checksum", "True", "--ckpt_keep_mode", "exponential"])
    assert args.ckpt_checksum is True and args.ckpt_keep_mode == "exponential"
    assert args.ckpt_restart_mode == "auto" and args.ckpt_keep_limit == 5
    with pytest.raises(SystemExit):
        parser.parse_args(["--ckpt_restart_mode", "never"])
    names = {d["name"] for d in ckpt_defs([{"name": "epochs"}])}
    assert {"epochs", "ckpt_restart_mode", "ckpt_checksum", "ckpt_keep_limit"} <= names
    assert {a.dest for a in parser._actions} - {"help"} == names - {"epochs"}


def test_the_readme_states_each_default_as_the_options_table_does() -> None:
    """`OPTIONS` is the one source of the defaults; the README's gParameters table must agree."""
    import re
    from pathlib import Path

    from candle_restart.ckpt.params import OPTIONS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(ckpt_\w+)` \| ([^|]+) \|", readme, re.MULTILINE))
    rows["ckpt_metadata"] = "none"  # its row is `metadata` / `ckpt_metadata`
    for option in OPTIONS:
        assert option.name in rows, f"README: no row for {option.name}"
        shown = rows[option.name].strip()
        if option.default is None:
            assert shown == "none" or option.name == "ckpt_directory", (option.name, shown)
        else:
            default = option.default
            text = f"{default:g}" if isinstance(default, float) else str(default)
            assert shown == f"`{text}`", (option.name, shown, text)
    # and the parser gives each key the table's default
    parsed = parse_params({"epochs": 1})
    assert (parsed.halt_seconds, parsed.keep_limit, parsed.signals) == (None, 5, ("USR1", "TERM", "INT", "USR2"))
