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
from typing import Final

from candle_restart.ckpt.info import finite_or_none
from candle_restart.records.jsonio import MAX_INT_DIGITS
from candle_restart.records.jsontypes import JsonObject, JsonValue, is_int, is_number
from candle_restart.records.taskstate import MetricSummary

MAX_DEPTH = 32  # below the JSON reader's 64, with room for state.json's own nesting
MAX_BYTES = 256 * 1024  # a result larger than this as JSON is dropped (it belongs in output/)


class _Dropped:
    """What a value that cannot be JSON becomes while walking: left out of its container."""


_DROP: Final = _Dropped()


class _Walk:
    def __init__(self) -> None:
        self.converted: list[str] = []
        self.dropped: list[str] = []

    def value(self, v: object, path: str, depth: int) -> JsonValue | _Dropped:
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
            out: JsonObject = {}
            for k, item in v.items():
                key = k if isinstance(k, str) else str(k)
                got = self.value(item, f"{path}.{key}" if path else key, depth + 1)
                if not isinstance(got, _Dropped):
                    out[key] = got
            return out
        if isinstance(v, (list, tuple, set, frozenset)):
            items = sorted(v, key=repr) if isinstance(v, (set, frozenset)) else v
            got_items = [self.value(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(items)]
            return [x for x in got_items if not isinstance(x, _Dropped)]
        return self.other(v, path, depth)

    def other(self, v: object, path: str, depth: int) -> JsonValue | _Dropped:
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


def jsonable(value: object) -> tuple[JsonValue, str | None]:
    """``value`` as strict JSON data, and a note of what was converted or dropped (None if nothing)."""
    walk = _Walk()
    try:
        out = walk.value(value, "", 0)
        if not isinstance(out, _Dropped) and len(json.dumps(out, allow_nan=False)) > MAX_BYTES:
            walk.dropped = [f"result: larger than {MAX_BYTES // 1024} KiB as JSON (write it to output/)"]
            out = _DROP
    except Exception as exc:  # a value whose attributes raise: recorded, never a crash
        walk.dropped = [f"result: could not be converted ({type(exc).__name__}: {exc})"[:300]]
        out = _DROP
    parts = [f"converted {', '.join(walk.converted[:3])}"] if walk.converted else []
    parts += [f"dropped {', '.join(walk.dropped[:3])}"] if walk.dropped else []
    more = len(walk.converted[3:]) + len(walk.dropped[3:])
    note = "; ".join(parts) + (f" (and {more} more)" if more else "") if parts else None
    return (None if isinstance(out, _Dropped) else out), note


def _last_number(value: JsonValue) -> float | None:
    if isinstance(value, list) and value:
        value = value[-1]
    if not is_number(value):
        return None
    assert isinstance(value, (int, float))
    return finite_or_none(float(value))


def metric_summary(info: JsonObject | None, result: JsonValue) -> MetricSummary | None:
    """The checkpointed metric of a run: name, mode, best, best_epoch, final (None if unknown).

    ``info`` is the newest checkpoint's ``ckpt-info.json`` (or the runner's summary of it);
    ``result`` the converted result.  None when the checkpoint names no metric.
    """
    info = info or {}
    name = info.get("save_best_metric")
    if not isinstance(name, str) or not name:
        return None
    final = _last_number(result.get(name)) if isinstance(result, dict) else None
    best, best_epoch, mode = info.get("best_metric_last"), info.get("best_epoch"), info.get("best_mode")
    return MetricSummary(
        name=name,
        mode="min" if mode == "min" else "max" if mode == "max" else None,
        best=finite_or_none(float(best)) if isinstance(best, (int, float)) and is_number(best) else None,
        best_epoch=best_epoch if isinstance(best_epoch, int) and is_int(best_epoch) else None,
        final=final,
    )
