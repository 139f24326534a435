"""CANDLE's checkpoint gParameters: names, defaults, conversions and checks.

`parse_params` turns a gParameters mapping (from a CANDLE benchmark, a YAML
sweep or the command line, where every value may still be a string) into a
frozen `CkptParams`.  It never mutates the caller's mapping and raises
`ParamError` (one line: ``gParameters: key: problem``) before anything else
happens, so a bad value never leaves half-made directories behind.

Keys, defaults and meanings follow CANDLE's ``ckpt_utils`` except where the
foundation issue fixed a CANDLE defect (noted per key below).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from candle_restart.ckpt.paramreader import Default, str2bool
from candle_restart.ckpt.paramreader import Reader as _Reader
from candle_restart.errors import ParamError
from candle_restart.runtime.deadline import parse_duration, parse_time
from candle_restart.runtime.preempt import DEFAULT_SIGNALS, EXTRA_SIGNAL, parse_signals

RESTART_MODES = ("off", "auto", "required")
KEEP_MODES = ("linear", "exponential", "all")
BEST_MODES = ("auto", "min", "max")
STDOUT_FORMATS = ("candle", "timestamped")
# The model file of a checkpoint: model.keras, CANDLE's model.h5 (Keras' HDF5 model), model.weights.h5.
MODEL_FORMATS = ("keras", "h5", "weights")
CANDLE_DIRECTORY = os.path.join(".", "save", "ckpts")  # CANDLE's, when there is no output_dir



@dataclass(frozen=True)
class Option:
    """One ``ckpt_*`` key: its command-line type, its default, the values allowed, its help."""

    name: str
    type: Callable[[str], object]
    default: Default
    help: str
    choices: tuple[str, ...] | None = None


# The one table of the ``ckpt_*`` keys and their defaults: `parse_params`, `ckpt_parser`,
# `ckpt_defs` and `CANDLE_RESTART_PARAMS` read it; the README's gParameters table is checked
# against it by the tests.
OPTIONS: tuple[Option, ...] = (
    Option("ckpt_restart_mode", str, "auto", "Mode to restart from a saved checkpoint", RESTART_MODES),
    Option("ckpt_checksum", str2bool, False, "Checksum the checkpoint files on write and restart"),
    Option(
        "ckpt_async",
        str2bool,
        True,
        "Write checkpoints in the background (training waits only for a snapshot)",
    ),
    Option("ckpt_skip_epochs", int, 0, "Number of epochs to skip before saving checkpoints"),
    Option("ckpt_directory", str, None, "Checkpoint directory (default: output_dir/ckpts)"),
    Option("ckpt_save_best", str2bool, True, "Toggle saving the best model"),
    Option("ckpt_save_best_metric", str, "val_loss", "Metric that decides the best model"),
    Option("ckpt_save_best_mode", str, "auto", "Whether the metric improves down or up", BEST_MODES),
    Option("ckpt_save_weights_only", str2bool, False, "Write a weights file instead of a model"),
    Option(
        "ckpt_model_format",
        str,
        "keras",
        "The model file: model.keras, CANDLE's model.h5, or model.weights.h5",
        MODEL_FORMATS,
    ),
    Option("ckpt_save_interval", int, 1, "Epoch interval between checkpoints (0 disables)"),
    Option("ckpt_keep_mode", str, "linear", "Which old checkpoints to keep", KEEP_MODES),
    Option("ckpt_keep_limit", int, 5, "How many checkpoints to keep (> 0)"),
    Option("ckpt_metadata", str, None, "Free text recorded in every ckpt-info.json"),
    Option(
        "ckpt_save_seconds", float, 0.0, "Also checkpoint at the first batch end after this many seconds"
    ),
    Option(
        "ckpt_signals",
        str,
        ",".join(DEFAULT_SIGNALS),
        "Signals that mean: checkpoint now, then exit 75",
    ),
    Option("ckpt_extra_signal", str, EXTRA_SIGNAL, "One more such signal ('none' to disable)"),
    Option(
        "ckpt_stdout_format",
        str,
        "candle",
        "Checkpoint log lines on stdout: CANDLE's bare message, or timestamped as in ckpt.log",
        STDOUT_FORMATS,
    ),
    Option(
        "ckpt_halt_seconds",
        float,
        None,
        "Stop this long (plus 3x the slowest commit and drain) before the allocation ends; unset: 5 s",
    ),
    Option(
        "ckpt_walltime", str, None, "The allocation's length (seconds or HH:MM:SS), counted from the start"
    ),
    Option("ckpt_halt_at", str, None, "An ISO time at which the allocation ends"),
    Option("ckpt_save_batches", int, 0, "Also checkpoint every N batches (0: off)"),
    Option(
        "ckpt_hang_factor",
        float,
        10.0,
        "The runner stops a training silent for this many times its longest step or commit (0: off)",
    ),
    Option("ckpt_hang_grace", float, 600.0, "Seconds the hang limit adds to that"),
    Option("ckpt_hang_first", float, 1800.0, "Hang limit of the first step and commit (compilation)"),
    Option(
        "ckpt_overhead_target",
        float,
        0.0,
        "Choose the batches between checkpoints to keep their overhead under this fraction (0: off)",
    ),
    Option(
        "ckpt_local_directory",
        str,
        None,
        "Node-local directory (/dev/shm, $TMPDIR) where checkpoints commit first; unset: one tier",
    ),
    Option(
        "ckpt_drain_interval",
        int,
        1,
        "Copy every Nth node-local checkpoint to ckpt_directory (0: only the best, final, preempted)",
    ),
)
DEFAULTS: Mapping[str, Default] = {option.name: option.default for option in OPTIONS}

# ckpt_* keys read elsewhere: ckpt_best_metric_last (here), ckpt_timestamp_last (CANDLE's; unused).
_OTHER_CKPT_KEYS = ("ckpt_best_metric_last", "ckpt_timestamp_last")


@dataclass(frozen=True)
class CkptParams:
    """The checkpoint settings of one training run, validated (made only by `parse_params`;
    the default of each ``ckpt_*`` key is in `OPTIONS`)."""

    epochs: int
    restart_mode: str
    save_best: bool
    save_best_metric: str
    save_best_mode: str
    best_metric_last: float | None
    skip_epochs: int
    save_interval: int
    save_weights_only: bool
    checksum: bool
    async_commit: bool
    keep_mode: str
    keep_limit: int
    directory: str
    metadata: str | None
    save_seconds: float
    signals: tuple[str, ...]
    stdout_format: str
    # Halt before the walltime and the checkpoint interval: see candle_restart.ckpt.pacing.
    halt_seconds: float | None  # None: the measured margin's floor alone (deadline.HALT_FLOOR)
    walltime: float | None  # seconds from the process's start
    halt_at: float | None  # epoch seconds
    save_batches: int
    overhead_target: float
    # The runner's hang watchdog (candle_restart.task.watchdog): k, grace, first-step floor.
    hang_factor: float
    hang_grace: float
    hang_first: float
    # Two tiers (candle_restart.ckpt.drain): commit node-locally, drain every Nth to `directory`.
    local_directory: str | None  # $VARS and ~ expanded; None: one tier
    drain_interval: int
    # keras: model.keras; h5: model.h5 (Keras' HDF5 model, as CANDLE's); weights: model.weights.h5.
    model_format: str = "keras"




class ParamType(Enum):
    """CANDLE's parameter types, for `typed_value` and ``CandleCkpt.param``."""

    STRING = "string"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    INTEGER_NN = "non-negative integer"
    INTEGER_GZ = "integer > 0"
    FLOAT = "float"
    FLOAT_NN = "non-negative float"


ParamValue = str | bool | int | float | None  # what `typed_value` returns


def typed_value(key: str, value: object, type_: ParamType, where: str = "gParameters") -> ParamValue:
    """``value`` converted to ``type_`` (None stays None); ParamError naming ``key`` otherwise."""
    if value is None:
        return None
    r = _Reader({key: value}, where, DEFAULTS)
    if type_ is ParamType.STRING:
        return r.string(key, value)
    if type_ is ParamType.BOOLEAN:
        return r.boolean(key, value)
    if type_ in (ParamType.INTEGER, ParamType.INTEGER_NN, ParamType.INTEGER_GZ):
        minimum = {ParamType.INTEGER_NN: 0, ParamType.INTEGER_GZ: 1}.get(type_)
        return r.integer(key, value, minimum)
    result = r.real(key, value)
    if type_ is ParamType.FLOAT_NN and result < 0:
        raise r.fail(key, value, "a non-negative number")
    return result


def default_directory(params: Mapping[str, object]) -> str:
    """``output_dir/ckpts`` when the benchmark has an output_dir, else CANDLE's ``./save/ckpts``."""
    output_dir = params.get("output_dir")
    if output_dir:
        return os.path.join(str(output_dir), "ckpts")
    return CANDLE_DIRECTORY


def parse_params(params: Mapping[str, object], where: str = "gParameters") -> CkptParams:
    """Validate and convert the checkpoint keys of ``params``; ``params`` is not modified.

    A key that is unset (or None) takes its default from `OPTIONS`.
    """
    if not isinstance(params, Mapping):
        raise ParamError(where, None, f"must be a mapping of parameters, got {type(params).__name__}")
    r = _Reader(params, where, DEFAULTS)
    if params.get("epochs") is None:
        raise ParamError(where, "epochs", "is required (the number of epochs to train)")
    epochs = r.integer("epochs", params["epochs"], minimum=0)

    def integer(minimum: int) -> Callable[[str, object], int]:
        return lambda key, value: r.integer(key, value, minimum)

    def choice(allowed: tuple[str, ...]) -> Callable[[str, object], str]:
        return lambda key, value: r.choice(key, value, allowed)

    best_last = r.optional("ckpt_best_metric_last", lambda k, v: r.real(k, v, finite=False))  # CANDLE's inf
    if best_last is not None and math.isnan(best_last):
        raise r.fail("ckpt_best_metric_last", params["ckpt_best_metric_last"], "a number, not NaN")
    metadata = params.get("metadata")
    metadata_key = "metadata"
    if metadata is None:
        metadata, metadata_key = params.get("ckpt_metadata"), "ckpt_metadata"
    hang_factor = r.get("ckpt_hang_factor", r.real)
    if hang_factor < 0:
        raise r.fail("ckpt_hang_factor", params["ckpt_hang_factor"], "a number >= 0 (0: no watchdog)")
    target = r.get("ckpt_overhead_target", r.real)
    if not 0 <= target < 1:
        raise r.fail("ckpt_overhead_target", params["ckpt_overhead_target"], "a fraction >= 0 and < 1")
    signals = _signals(r, "ckpt_signals") + _signals(r, "ckpt_extra_signal")
    weights_only = r.get("ckpt_save_weights_only", r.boolean)
    model_format = r.get("ckpt_model_format", choice(MODEL_FORMATS))
    if weights_only and model_format == "h5":
        raise r.fail("ckpt_model_format", model_format, "'weights' or 'keras' with ckpt_save_weights_only=True")
    if model_format == "weights":
        weights_only = True
    elif weights_only:
        model_format = "weights"

    return CkptParams(
        epochs=epochs,
        restart_mode=r.get("ckpt_restart_mode", choice(RESTART_MODES)),
        save_best=r.get("ckpt_save_best", r.boolean),
        save_best_metric=r.get("ckpt_save_best_metric", r.string),
        save_best_mode=r.get("ckpt_save_best_mode", choice(BEST_MODES)),
        best_metric_last=best_last,
        skip_epochs=r.get("ckpt_skip_epochs", integer(0)),
        save_interval=r.get("ckpt_save_interval", integer(0)),
        save_weights_only=weights_only,
        checksum=r.get("ckpt_checksum", r.boolean),
        async_commit=r.get("ckpt_async", r.boolean),
        keep_mode=r.get("ckpt_keep_mode", choice(KEEP_MODES)),
        keep_limit=r.get("ckpt_keep_limit", integer(1)),
        directory=r.optional("ckpt_directory", r.string) or default_directory(params),
        metadata=None if metadata is None else r.string(metadata_key, metadata),
        save_seconds=r.get("ckpt_save_seconds", r.seconds),
        signals=tuple(dict.fromkeys(signals)),
        stdout_format=r.get("ckpt_stdout_format", choice(STDOUT_FORMATS)),
        halt_seconds=r.optional("ckpt_halt_seconds", r.seconds),
        walltime=r.optional("ckpt_walltime", _converted(r, parse_duration, "seconds or HH:MM:SS")),
        halt_at=r.optional("ckpt_halt_at", _converted(r, parse_time, "an ISO time")),
        save_batches=r.get("ckpt_save_batches", integer(0)),
        hang_factor=hang_factor,
        hang_grace=r.get("ckpt_hang_grace", r.seconds),
        hang_first=r.get("ckpt_hang_first", r.seconds),
        overhead_target=target,
        local_directory=_local_directory(r),
        drain_interval=r.get("ckpt_drain_interval", integer(0)),
        model_format=model_format,
    )


def _local_directory(r: _Reader) -> str | None:
    """``ckpt_local_directory`` with ``$VARS`` and ``~`` expanded on this node; "" or "none": one tier."""
    raw = r.optional("ckpt_local_directory", r.string)
    if raw is None or raw.strip().lower() in ("", "none"):
        return None
    expanded = os.path.expanduser(os.path.expandvars(raw.strip()))
    if "\0" in expanded:
        raise r.fail("ckpt_local_directory", raw, "a directory name (it holds a NUL byte)")
    if "$" in expanded:
        raise r.fail("ckpt_local_directory", raw, "a directory whose variables are all set on this node")
    return expanded


def _converted(
    r: _Reader, parse: Callable[[str | float], float], wanted: str
) -> Callable[[str, object], float | None]:
    """A reader that converts with ``parse``; its ValueError becomes one line naming the key."""

    def read(key: str, value: object) -> float | None:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None  # "none" on a command line: unset
        if not isinstance(value, (str, int, float)):
            raise r.fail(key, value, wanted)
        try:
            return parse(value)
        except ValueError:
            raise r.fail(key, value, wanted) from None

    return read


def _signals(r: _Reader, key: str) -> tuple[str, ...]:
    """A comma-separated list (or a list) of signal names; "" or "none" means none."""
    raw = r.params.get(key, DEFAULTS[key])
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none")):
        return ()
    names = raw.split(",") if isinstance(raw, str) else list(raw) if isinstance(raw, (list, tuple)) else None
    if names is None:
        raise r.fail(key, raw, "a comma-separated list of signal names")
    try:
        return tuple(s.name.removeprefix("SIG") for s in parse_signals(names))
    except ValueError as exc:
        raise r.fail(key, raw, f"signal names such as USR1,TERM ({exc})") from None


def ckpt_keys() -> frozenset[str]:
    """Every ``ckpt_*`` key a checkpoint callback understands."""
    return frozenset(DEFAULTS) | frozenset(_OTHER_CKPT_KEYS)


def unknown_ckpt_keys(params: Mapping[str, object]) -> list[tuple[str, str | None]]:
    """``(key, closest known key or None)`` for each ``ckpt_*`` key of ``params`` no callback reads.

    Keys without the ``ckpt_`` prefix are a benchmark's own and are never reported.
    """
    import difflib

    known = sorted(ckpt_keys())
    unknown = []
    for key in params:
        if isinstance(key, str) and key.startswith("ckpt_") and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            unknown.append((key, close[0] if close else None))
    return unknown


def ckpt_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add CANDLE's ``--ckpt_*`` options to an argparse parser and return it."""
    for o in OPTIONS:
        parser.add_argument(f"--{o.name}", type=o.type, default=o.default, choices=o.choices, help=o.help)
    return parser


CandleDef = dict[str, object]  # one of CANDLE's parameter definitions: name, type, default, help, ...


def ckpt_defs(defs: list[CandleDef]) -> list[CandleDef]:
    """Return ``defs`` plus CANDLE-style definitions of the ``ckpt_*`` keys (a new list)."""
    new_defs = []
    for o in OPTIONS:
        entry: CandleDef = {"name": o.name, "type": o.type, "default": o.default, "help": o.help}
        if o.choices:
            entry["choices"] = list(o.choices)
        new_defs.append(entry)
    return list(defs) + new_defs


def check_writable(directory: Path, key: str = "ckpt_directory") -> None:
    """Raise ParamError (naming ``key``) unless ``directory`` exists as a writable directory or can be created."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():
            raise ParamError("gParameters", key, f"{probe} is a dangling symlink")
        probe = probe.parent
    if not probe.is_dir():
        raise ParamError("gParameters", key, f"{directory}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        raise ParamError("gParameters", key, f"{directory}: {probe} is not writable")
