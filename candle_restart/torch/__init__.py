"""PyTorch: `CandleCkptPyTorch`, CANDLE's PyTorch checkpoint class over the checkpoint engine.

``callback.py`` is the class and the loop's calls; ``state.py`` what a checkpoint captures
(the objects given to ``set_model``, every RNG) and how it is loaded back; ``snapshot.py`` the
host copies an asynchronous commit writes from; ``tensorio.py`` the tensors file
(``model.h5``, safetensors layout) and CANDLE's ``torch.save`` files, read without running code.
Importing this package imports torch; ``import candle_restart`` does not.
"""

import importlib.util

if importlib.util.find_spec("torch") is None:
    raise ImportError(
        "candle_restart.torch needs PyTorch: pip install 'candle-restart[torch]' (or a torch build of your own)"
    )

from candle_restart.runtime.preempt import Preempted
from candle_restart.torch.callback import CandleCkptPyTorch

__all__ = ["CandleCkptPyTorch", "Preempted"]
