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
* it is input like any file: JSON goes through the project's safe reader
  (`candle_restart.records.jsonio`: no deep nesting, no huge integers), ``@``
  names a regular file only (a FIFO or a device is refused without reading it),
  the text is at most `MAX_FILE_BYTES` either way, and every number must be
  finite (`parse_params`);
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

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from candle_restart.errors import ParamError
from candle_restart.records.jsonio import loads, utf8
from candle_restart.runtime.envvars import CKPT_DIRECTORY_ENV, OUTPUT_DIR_ENV, PARAMS_ENV

ENV_VAR = PARAMS_ENV  # the name this module's callers know
DIRECTORY_ENV = {"ckpt_directory": CKPT_DIRECTORY_ENV, "output_dir": OUTPUT_DIR_ENV}
MAX_FILE_BYTES = 64 * 1024  # the longest value or ``@`` file read: a few dozen keys need a few hundred bytes


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


def _read_file(path: Path, source: str) -> str:
    """The text of the regular file ``path``, at most `MAX_FILE_BYTES`; ParamError (one line) otherwise.

    Opened without blocking and checked on the open descriptor, so a FIFO, a device or a
    file swapped for one after a check is never read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ParamError(source, None, f"cannot be read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ParamError(source, None, "is not a regular file")
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ParamError(source, None, f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise ParamError(source, None, f"is larger than {MAX_FILE_BYTES} bytes")
    try:
        return utf8(b"".join(chunks))
    except ValueError as exc:
        raise ParamError(source, None, str(exc)) from None


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
        text = _read_file(path, source)
    elif len(text.encode(errors="replace")) > MAX_FILE_BYTES:
        raise ParamError(source, None, f"is longer than {MAX_FILE_BYTES} bytes")
    values: Mapping[str, object]
    if text.lstrip().startswith("{"):
        try:
            loaded = loads(text)
        except ValueError as exc:  # the safe reader's one line (depth, integer size, syntax)
            raise ParamError(source, None, str(exc)) from None
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
