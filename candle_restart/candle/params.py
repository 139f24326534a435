"""CANDLE's generic parameter methods (``param``, ``param_type_check*``, ``enabled``, ...), as a mixin.

CANDLE exposed these on its callback and benchmark code calls them; they read
``self.gParams`` with CANDLE's conversions and raise `ParamError` naming the key.
The mixin needs nothing of its host but ``gParams``.
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from collections.abc import Collection

from candle_restart.candle.types import ParamRequired
from candle_restart.ckpt.params import ParamType, str2bool, typed_value
from candle_restart.errors import ParamError

# A converted gParameters value: what ``typed_value`` returns for each ParamType (None: absent).
ParamResult = str | bool | int | float | None


class CandleParamMethods:
    """Mixed into `candle_restart.candle.facade.CandleCkpt`; needs ``self.gParams``."""

    gParams: dict[str, object]

    def param(
        self,
        key: str,
        dflt: object,
        type_: ParamType = ParamType.STRING,
        allowed: Collection[object] | None = None,
    ) -> ParamResult:
        """The value of ``key`` converted to ``type_`` (``dflt`` when absent), checked against ``allowed``.

        ``dflt`` a `ParamRequired`: an absent key raises `ParamError`.
        """
        if key not in self.gParams and isinstance(dflt, ParamRequired):
            raise ParamError("gParameters", key, "is required")
        value = self.gParams.get(key, dflt)
        converted = self.param_type_check(key, value, type_)
        self.param_allowed(key, converted, allowed)
        return converted

    def param_type_check(self, key: str, value: object, type_: ParamType) -> ParamResult:
        return typed_value(key, value, type_)

    def param_type_check_bool(self, key: str, value: object) -> ParamResult:
        return typed_value(key, value, ParamType.BOOLEAN)

    def param_type_check_int(self, key: str, value: object, type_: ParamType) -> ParamResult:
        return typed_value(key, value, type_)

    def param_type_check_float(self, key: str, value: object, type_: ParamType) -> ParamResult:
        return typed_value(key, value, type_)

    def param_allowed(self, key: str, value: object, allowed: Collection[object] | None) -> None:
        if allowed is not None and value not in allowed:
            raise ParamError("gParameters", key, f"must be one of {list(allowed)}, got {value!r}")

    def _truth(self, key: str) -> bool | None:
        if key not in self.gParams:
            return None
        try:
            return str2bool(self.gParams[key])
        except ArgumentTypeError:
            return bool(self.gParams[key])

    def enabled(self, key: str) -> bool:
        """Is this parameter set to True (``"True"``, ``1``, ... count)?"""
        return self._truth(key) is True

    def disabled(self, key: str) -> bool:
        """Is this parameter set to False (``"False"``, ``0``, ... count)?"""
        return self._truth(key) is False
