"""CandleCkptKeras offers every public method of CANDLE's, with CANDLE's argument names."""

from __future__ import annotations

import inspect

import pytest

from candle_restart.keras import CandleCkptKeras

# From CANDLE's API page for candle.ckpt_keras_utils.CandleCkptKeras.
CANDLE_METHODS = {
    "build_model": ["model_file"],
    "checksum": ["dir_work"],
    "checksum_file": ["filename"],
    "ckpt_epoch": ["epoch", "direction", "metric_value"],
    "clean": ["epoch_now"],
    "debug": ["message"],
    "delete": ["epoch"],
    "disabled": ["key"],
    "enabled": ["key"],
    "info": ["message"],
    "keep": ["epoch", "epoch_now", "kept"],
    "param": ["key", "dflt", "type_", "allowed"],
    "param_allowed": ["key", "value", "allowed"],
    "param_type_check": ["key", "value", "type_"],
    "param_type_check_bool": ["key", "value"],
    "param_type_check_float": ["key", "value", "type_"],
    "param_type_check_int": ["key", "value", "type_"],
    "relpath": ["p"],
    "report_final": [],
    "report_initial": [],
    "restart": ["model", "verbose"],
    "restart_json": ["directory"],
    "save_check": ["epoch", "direction", "metric_value"],
    "save_check_best": ["epoch", "direction", "metric_value"],
    "scan_params": ["gParams"],
    "set_model": ["model"],
    "set_params": ["params"],
    "symlink": ["src", "dst"],
    "write_json": ["jsonfile", "epoch"],
    "write_model": ["dir_work", "epoch"],
    "write_model_backend": ["model", "epoch"],
    "on_epoch_begin": ["epoch", "logs"],
    "on_epoch_end": ["epoch", "logs"],
    "on_train_begin": ["logs"],
    "on_train_end": ["logs"],
    "on_train_batch_begin": ["batch", "logs"],
    "on_train_batch_end": ["batch", "logs"],
    "on_batch_begin": ["batch", "logs"],
    "on_batch_end": ["batch", "logs"],
}


@pytest.mark.parametrize("name, args", sorted(CANDLE_METHODS.items()))
def test_method_exists_with_candles_arguments(name: str, args: list[str]) -> None:
    method = getattr(CandleCkptKeras, name)
    params = [p for p in inspect.signature(method).parameters if p != "self"]
    assert params == args


def test_constructor_signature() -> None:
    params = inspect.signature(CandleCkptKeras.__init__).parameters
    assert list(params)[1:] == ["gParameters", "logger", "verbose"]
    assert params["logger"].default == "DEFAULT" and params["verbose"].default is True
