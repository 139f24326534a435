"""The shim's ``candle.ckpt_utils``: CANDLE's names, as placeholders until the test swaps them."""

from __future__ import annotations

import argparse
from enum import Enum, auto
from typing import Any


def str2bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).lower() in ("yes", "true", "t", "y", "1"):
        return True
    if str(v).lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError("Boolean value expected.")


class ModelType(Enum):
    KERAS = auto()
    PYTORCH = auto()


class CandleCkpt:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            "candle.ckpt_utils.CandleCkpt: candle_lib's checkpoint module is absent; swap one in"
        )


def ckpt_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    raise RuntimeError("candle.ckpt_utils.ckpt_parser: candle_lib's checkpoint module is absent; swap one in")


def ckpt_defs(defs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    raise RuntimeError("candle.ckpt_utils.ckpt_defs: candle_lib's checkpoint module is absent; swap one in")
