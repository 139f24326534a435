"""The framework-free checkpoint core (imports no TensorFlow, Keras, Parsl or Slurm code).

Public names:

* `parse_params`, `CkptParams`, `ckpt_parser`, `ckpt_defs`, `str2bool`: CANDLE's gParameters.
* `CkptLayout`: the paths of a checkpoint directory.
* `commit` (module): the commit protocol; `begin`, `commit`, `remove_epoch`.
* `CkptInfo`, `read_ckpt_info` (``ckpt-info.json``), `verify_checkpoint`, `find_restart`: reading and
  choosing checkpoints.
* `surviving_epochs`: keep policies.
* Errors: `CkptError`, `ParamError`, `CorruptCheckpointError`, `NoCheckpointError`, `CommitError`,
  `RestartError`.

Old names kept for users: the modules every process uses moved to `candle_restart.runtime` (fsio,
lease, envvars, preempt, heartbeat, deadline), CANDLE's API to `candle_restart.candle` (``candle``,
``candle_params``, ``candle_types`` are its ``facade``, ``params``, ``types``; `CandleCkpt`,
`ModelType`, `CandleCkptModel`, `ParamRequired` are still names here).  Each old module name is the
same module object as the new one, not a copy: one preemption `REQUEST`, one heartbeat, whichever
name a user imports first.  Code of this project uses the new names (`make lint` checks the layers).
"""

import sys as _sys
from typing import TYPE_CHECKING

from candle_restart.ckpt import commit
from candle_restart.ckpt.keep import surviving_epochs
from candle_restart.ckpt.layout import CkptLayout
from candle_restart.ckpt.params import CkptParams, ParamType, ckpt_defs, ckpt_parser, parse_params, str2bool
from candle_restart.ckpt.restore import Found, find_restart, verify_checkpoint
from candle_restart.errors import (
    CkptError,
    CommitError,
    CorruptCheckpointError,
    NoCheckpointError,
    ParamError,
    RestartError,
)
from candle_restart.records.ckptinfo import CkptInfo, read_ckpt_info
from candle_restart.runtime import deadline, envvars, fsio, heartbeat, lease, preempt

for _moved in (deadline, envvars, fsio, heartbeat, lease, preempt):
    _sys.modules[f"{__name__}.{_moved.__name__.rpartition('.')[2]}"] = _moved

# CANDLE's API sits a layer above this package (its facade drives the engine), so it is imported
# last; when it is imported first, its modules are still being initialised here, hence the lazy names.
from candle_restart.candle import facade as _facade  # noqa: E402
from candle_restart.candle import params as _params  # noqa: E402
from candle_restart.candle import types as _types  # noqa: E402

candle, candle_params, candle_types = _facade, _params, _types
for _old, _new in (("candle", _facade), ("candle_params", _params), ("candle_types", _types)):
    _sys.modules[f"{__name__}.{_old}"] = _new

if TYPE_CHECKING:
    from candle_restart.candle.facade import CandleCkpt
    from candle_restart.candle.types import CandleCkptModel, ModelType, ParamRequired


_CANDLE_NAMES = {"CandleCkpt": _facade, "CandleCkptModel": _types, "ModelType": _types, "ParamRequired": _types}


def __getattr__(name: str) -> object:
    """`CandleCkpt`, `ModelType`, `CandleCkptModel`, `ParamRequired`: now in `candle_restart.candle`."""
    if name in _CANDLE_NAMES:
        return getattr(_CANDLE_NAMES[name], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CandleCkpt",
    "CandleCkptModel",
    "CkptError",
    "CkptInfo",
    "CkptLayout",
    "CkptParams",
    "CommitError",
    "CorruptCheckpointError",
    "Found",
    "ModelType",
    "NoCheckpointError",
    "ParamError",
    "ParamRequired",
    "ParamType",
    "RestartError",
    "ckpt_defs",
    "ckpt_parser",
    "commit",
    "find_restart",
    "parse_params",
    "read_ckpt_info",
    "str2bool",
    "surviving_epochs",
    "verify_checkpoint",
]
