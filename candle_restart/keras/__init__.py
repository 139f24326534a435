"""Keras 3 backend: `CandleCkptKeras`, its alias `CandleCheckpointCallback`, `restart`, `MultiGPUCheckpoint`.

TensorFlow is an extra of the distribution (``candle-restart[cpu]`` installs
``tensorflow-cpu``, ``candle-restart[tensorflow]`` the GPU build) so that a
cluster's own TensorFlow is never replaced; importing this package without
any Keras backend installed fails with one line saying which to install.
"""

import importlib.util
import os

_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if _BACKEND == "tensorflow" and importlib.util.find_spec("tensorflow") is None:
    raise ImportError(
        "candle_restart.keras needs TensorFlow: pip install 'candle-restart[cpu]' (tensorflow-cpu) "
        "or 'candle-restart[tensorflow]', or set KERAS_BACKEND to an installed backend"
    )

from candle_restart.ckpt.params import ckpt_defs, ckpt_parser  # noqa: E402
from candle_restart.keras.callback import CandleCkptKeras  # noqa: E402
from candle_restart.keras.fit import fit  # noqa: E402
from candle_restart.keras.multigpu import MultiGPUCheckpoint  # noqa: E402
from candle_restart.keras.older import CandleCheckpointCallback, restart  # noqa: E402

__all__ = [
    "CandleCheckpointCallback",
    "CandleCkptKeras",
    "MultiGPUCheckpoint",
    "ckpt_defs",
    "ckpt_parser",
    "fit",
    "restart",
]
