"""The framework-free checkpoint core (imports no TensorFlow, Keras, Parsl or Slurm code).

Public names:

* `parse_params`, `CkptParams`, `ckpt_parser`, `ckpt_defs`, `str2bool`: CANDLE's gParameters.
* `CkptLayout`: the paths of a checkpoint directory.
* `commit` (module): the commit protocol; `begin`, `commit`, `remove_epoch`.
* `CkptInfo`, `read_ckpt_info` (``ckpt-info.json``), `verify_checkpoint`, `find_restart`: reading and
  choosing checkpoints.
* `surviving_epochs`: keep policies.
* `CandleCkpt`: CANDLE's callback logic; backends subclass it.
* `ModelType`, `CandleCkptModel`, `ParamRequired`: CANDLE's small types of ``candle.ckpt_utils``.
* Errors: `CkptError`, `ParamError`, `CorruptCheckpointError`, `NoCheckpointError`, `CommitError`,
  `RestartError`.

The modules every process uses moved to `candle_restart.runtime` (fsio, lease, envvars, preempt,
heartbeat, deadline).  Their old names here still import, and are the same module objects, not
copies: one preemption `REQUEST`, one heartbeat, whichever name a user imports first.
"""

import sys as _sys

from candle_restart.ckpt import commit
from candle_restart.ckpt.candle import CandleCkpt
from candle_restart.ckpt.candle_types import CandleCkptModel, ModelType, ParamRequired
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
