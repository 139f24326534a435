"""What a training function returned, and its metric, as ``state.json`` records them.

``run(gParameters)`` may return anything: a number, a dict of metrics, a Keras ``History``,
a model.  The runner records it under ``result`` when the training completes:

* JSON values are kept as they are (strict JSON: a non-finite float becomes null);
* numpy scalars and arrays become numbers and lists; tuples and sets become lists;
  a Keras ``History`` (anything with a ``history`` dict) becomes that dict; a dataclass
  becomes its fields; dict keys that are not strings become strings; an integer too long
  for the project's JSON reader becomes a string;
* anything else (a model, a file handle) is dropped: left out of its container, or the
  whole ``result`` is null, and ``result_note`` says what was converted or dropped.

``metric`` summarises the run's checkpointed metric: its name and mode, the best value and
its epoch (from the newest checkpoint's ``ckpt-info.json``), and the final value when the
result holds it (a History's last value of that metric, or the dict's number).

Contract: `jsonable` and `metric_summary` never raise, whatever the value.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from candle_restart.ckpt.info import finite_or_none
from candle_restart.records.jsonio import MAX_INT_DIGITS

MAX_DEPTH = 32  # below the JSON reader's 64, with room for state.json's own nesting
MAX_BYTES = 256 * 1024  # a result larger than this as JSON is dropped (it belongs in output/)
_DROP = object()


class _Walk:
    def __init__(self) -> None:
        self.converted: list[str] = []
        self.dropped: list[str] = []

    def value(self, v: Any, path: str, depth: int) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            if len(str(abs(v))) > MAX_INT_DIGITS:  # the project's reader refuses such integers
                self.converted.append(f"{path or 'result'}: a {len(str(abs(v)))}-digit integer as a string")
                return str(v)
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if depth >= MAX_DEPTH:
            self.dropped.append(f"{path or 'result'}: nested deeper than {MAX_DEPTH}")
            return _DROP
        if isinstance(v, dict):
            out = {}
            for k, item in v.items():
                key = k if isinstance(k, str) else str(k)
                got = self.value(item, f"{path}.{key}" if path else key, depth + 1)
                if got is not _DROP:
                    out[key] = got
            return out
        if isinstance(v, (list, tuple, set, frozenset)):
            items = sorted(v, key=repr) if isinstance(v, (set, frozenset)) else v
            got_items = [self.value(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(items)]
            return [x for x in got_items if x is not _DROP]
        return self.other(v, path, depth)

    def other(self, v: Any, path: str, depth: int) -> Any:
        name = type(v).__name__
        where = path or "result"
        tolist = getattr(v, "tolist", None)
        if hasattr(v, "dtype") and callable(tolist):  # a numpy array or scalar
            shaped = bool(getattr(v, "shape", ()))
            self.converted.append(f"{where}: numpy {name} as {'a list' if shaped else 'a number'}")
            return self.value(tolist(), path, depth)
        history = getattr(v, "history", None)
        if isinstance(history, dict):  # keras.callbacks.History
            self.converted.append(f"{where}: {name} as its .history")
            return self.value(history, path, depth)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            self.converted.append(f"{where}: dataclass {name} as its fields")
            return self.value(dataclasses.asdict(v), path, depth)
        self.dropped.append(f"{where}: a {name} is not JSON-able")
        return _DROP


def jsonable(value: Any) -> tuple[Any, str | None]:
    """``value`` as strict JSON data, and a note of what was converted or dropped (None if nothing)."""
    walk = _Walk()
    try:
        out = walk.value(value, "", 0)
        if out is not _DROP and len(json.dumps(out, allow_nan=False)) > MAX_BYTES:
            walk.dropped = [f"result: larger than {MAX_BYTES // 1024} KiB as JSON (write it to output/)"]
            out = _DROP
    except Exception as exc:  # a value whose attributes raise: recorded, never a crash
        walk.dropped = [f"result: could not be converted ({type(exc).__name__}: {exc})"[:300]]
        out = _DROP
    parts = [f"converted {', '.join(walk.converted[:3])}"] if walk.converted else []
    parts += [f"dropped {', '.join(walk.dropped[:3])}"] if walk.dropped else []
    more = len(walk.converted[3:]) + len(walk.dropped[3:])
    note = "; ".join(parts) + (f" (and {more} more)" if more else "") if parts else None
    return (None if out is _DROP else out), note


def _last_number(value: Any) -> float | None:
    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return finite_or_none(float(value))


def metric_summary(info: dict[str, Any] | None, result: Any) -> dict[str, Any] | None:
    """The checkpointed metric of a run: name, mode, best, best_epoch, final (None if unknown).

    ``info`` is the newest checkpoint's ``ckpt-info.json``; ``result`` the converted result.
    None when there is neither a checkpoint metric nor a final value.
    """
    info = info or {}
    name = info.get("save_best_metric")
    name = name if isinstance(name, str) and name else None
    final = _last_number(result.get(name)) if name and isinstance(result, dict) else None
    best = info.get("best_metric_last")
    best = (
        finite_or_none(float(best)) if isinstance(best, (int, float)) and not isinstance(best, bool) else None
    )
    if name is None:
        return None
    best_epoch = info.get("best_epoch")
    mode = info.get("best_mode")
    return {
        "name": name,
        "mode": mode if mode in ("min", "max") else None,
        "best": best,
        "best_epoch": best_epoch
        if isinstance(best_epoch, int) and not isinstance(best_epoch, bool)
        else None,
        "final": final,
    }
