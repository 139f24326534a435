"""CANDLE's checkpoint API without a framework: the facade over the engine (`candle_restart.ckpt`).

Imports no framework; the Keras and PyTorch callbacks (`candle_restart.keras`,
`candle_restart.torch`) subclass `CandleCkpt`.

* `facade`: `CandleCkpt`, CANDLE's ``candle.ckpt_utils.CandleCkpt`` with its method names and
  attributes, each delegating to the engine collaborator that owns it; `GParams`.
* `params`: CANDLE's generic ``param*`` methods (`CandleParamMethods`), mixed into `CandleCkpt`.
* `types`: CANDLE's small types `ModelType`, `CandleCkptModel`, `ParamRequired`.

Users import these as CANDLE did, from `candle_restart.ckpt_utils` (or `candle_restart`); the
modules' old names in `candle_restart.ckpt` (``candle``, ``candle_params``, ``candle_types``)
still import, as the same module objects.
"""

from candle_restart.candle.facade import CandleCkpt, GParams
from candle_restart.candle.params import CandleParamMethods
from candle_restart.candle.types import CandleCkptModel, ModelType, ParamRequired

__all__ = ["CandleCkpt", "CandleCkptModel", "CandleParamMethods", "GParams", "ModelType", "ParamRequired"]
