"""Checkpoint keys set outside gParameters: the ``CANDLE_RESTART_PARAMS`` environment variable.

CANDLE's own parser knows only CANDLE's keys, so a benchmark run through it
cannot be given the keys that exist only here (``ckpt_async``,
``ckpt_save_best_mode``, ``ckpt_signals``, ``ckpt_save_seconds``, ...).
``CANDLE_RESTART_PARAMS`` supplies any ``ckpt_*`` key, in one of three forms::

    CANDLE_RESTART_PARAMS='{"ckpt_async": false, "ckpt_signals": "USR1,TERM"}'   # a JSON object
    CANDLE_RESTART_PARAMS='ckpt_async=False; ckpt_signals=USR1,TERM'             # key=value; key=value
    CANDLE_RESTART_PARAMS=@/path/to/ckpt.conf      # a file in either form (key=value a line, # comments)

Contract of `with_environment`:

* a key gParameters already holds (with a value other than None) is kept: the
  environment only fills in what the benchmark's parser could not set, and
  never overrides a sweep's or a command line's explicit value;
* the variable is validated on its own, like gParameters, before anything
  else happens: a malformed value, a file that cannot be read, a key that is
  not a checkpoint key or a bad value raises `ParamError`, one line naming the
  source (the variable, or the variable and its file), the key and the problem;
* unset or blank, it changes nothing.

Two more variables carry the directories the task runner gives a task
(``candle-restart run`` sets both for every task, ``entry`` or ``command``,
so a script whose own parser does not take ``--ckpt_directory``/``--output_dir``
still gets them): ``CANDLE_RESTART_CKPT_DIRECTORY`` (`CKPT_DIRECTORY_ENV`) and
``CANDLE_RESTART_OUTPUT_DIR`` (`OUTPUT_DIR_ENV`).  `with_environment` fills
``ckpt_directory`` and ``output_dir`` from them when gParameters has none, by
the same rule: an explicit value is never overridden.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from candle_restart.ckpt.envvars import CKPT_DIRECTORY_ENV, OUTPUT_DIR_ENV, PARAMS_ENV
from candle_restart.errors import ParamError

ENV_VAR = PARAMS_ENV  # the name this module's callers know
DIRECTORY_ENV = {"ckpt_directory": CKPT_DIRECTORY_ENV, "output_dir": OUTPUT_DIR_ENV}


def _keys() -> frozenset[str]:
    from candle_restart.ckpt.params import DEFAULTS

    return frozenset(DEFAULTS) | {"ckpt_best_metric_last"}


def _parse_pairs(text: str, source: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in text.replace("\n", ";").split(";"):
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParamError(source, None, f"{item!r} is not key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def environment_params(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The checkpoint keys ``CANDLE_RESTART_PARAMS`` sets, validated; {} when it is unset or blank."""
    from candle_restart.ckpt.params import parse_params

    text = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    source = ENV_VAR
    if not text:
        return {}
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        source = f"{ENV_VAR} file {path}"
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ParamError(source, None, f"cannot be read: {exc}") from None
    values: Mapping[str, object]
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParamError(source, None, f"is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ParamError(source, None, "must be a JSON object of checkpoint keys")
        values = loaded
    else:
        values = _parse_pairs(text, source)
    known = _keys()
    for key in values:
        if key not in known:
            raise ParamError(source, key, "is not a checkpoint key (ckpt_async, ckpt_signals, ...)")
    parse_params({**values, "epochs": 0}, where=source)  # every value checked, naming this source
    return dict(values)


def with_environment(
    params: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> dict[str, object]:
    """``params`` with the keys ``CANDLE_RESTART_PARAMS`` (and the runner's directory variables,
    `DIRECTORY_ENV`) set where ``params`` has none (a new dict)."""
    environ = os.environ if environ is None else environ
    merged = dict(params)
    for key, value in environment_params(environ).items():
        if merged.get(key) is None:
            merged[key] = value
    for key, var in DIRECTORY_ENV.items():
        if merged.get(key) is None and environ.get(var):
            merged[key] = environ[var]
    return merged
