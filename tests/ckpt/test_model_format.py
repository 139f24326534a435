"""``ckpt_model_format``: which model file a checkpoint holds, and its one conflict."""

from __future__ import annotations

import pytest

from candle_restart.ckpt.params import parse_params
from candle_restart.errors import ParamError


@pytest.mark.parametrize(
    ("given", "model_format", "weights_only"),
    [
        ({}, "keras", False),
        ({"ckpt_model_format": "h5"}, "h5", False),
        ({"ckpt_model_format": "weights"}, "weights", True),
        ({"ckpt_save_weights_only": "True"}, "weights", True),
        ({"ckpt_save_weights_only": True, "ckpt_model_format": "keras"}, "weights", True),
    ],
)
def test_the_format_and_weights_only_agree(
    given: dict[str, object], model_format: str, weights_only: bool
) -> None:
    settings = parse_params({"epochs": 1, **given})
    assert (settings.model_format, settings.save_weights_only) == (model_format, weights_only)


def test_a_whole_h5_model_with_weights_only_is_refused_in_one_line() -> None:
    with pytest.raises(ParamError, match=r"^gParameters: ckpt_model_format: must be 'weights' or 'keras'"):
        parse_params({"epochs": 1, "ckpt_model_format": "h5", "ckpt_save_weights_only": True})
    with pytest.raises(ParamError, match="ckpt_model_format"):
        parse_params({"epochs": 1, "ckpt_model_format": "hdf5"})
