"""What the callback-state checkpoint knows of each kind of callback: what to save, how to put it back.

An `Adapter` reads a callback's state as a dict (values `candle_restart.keras.cbvalues` can
encode) and sets it back on a fresh instance, after that instance's ``on_train_begin`` has run
(which resets most of them).  `adapter_for` picks one:

* a callback with ``get_state()`` and ``set_state(state)`` (the protocol, see
  `candle_restart.keras.cbstate`) speaks for itself;
* Keras': ``ReduceLROnPlateau`` (``wait``, ``cooldown_counter``, ``best``; the learning rate
  it set lives in the optimizer, which the checkpoint restores), ``EarlyStopping``
  (``wait``, ``stopped_epoch``, ``best``, ``best_epoch``, ``best_weights``: by reference when
  they are this checkpoint's own weights, else as arrays), ``ModelCheckpoint`` (``best`` and
  its ``save_freq`` batch counters), ``CSVLogger`` (the file's content as of the checkpoint,
  its columns and whether its header is written: a resumed run appends, no row duplicated or
  lost), ``BackupAndRestore`` (its counters; see `candle_restart.keras.cbstate` for how it
  and our restart share a ``fit``), ``LearningRateScheduler`` (no state of its own: the
  learning rate is the optimizer's), ``History`` (the epochs and metrics so far);
* CANDLE's (candle_lib is not on the package registry: recognised by class name and
  attributes): ``CyclicLR`` (``clr_iterations``, ``trn_iterations``, ``history``; its
  ``on_train_begin`` is run again afterwards so it sets the learning rate its counters give)
  and ``CandleRemoteMonitor`` (``log_messages``).

`is_stateless` names callbacks known to carry nothing across epochs (progress bars, another
checkpoint callback (it checkpoints itself),
``TerminateOnNaN``, CANDLE's ``TerminateOnTimeOut``, a time limit per process): they are neither
saved nor named as missing.  Any other callback is watched for attributes that change
(`candle_restart.keras.cbstate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import keras

from candle_restart.candle.facade import CandleCkpt
from candle_restart.keras.internals import private_counters, set_private_counters
from candle_restart.records.cbstate import Hook

State = dict[str, object]
CHECKPOINT_WEIGHTS = "the checkpoint's weights"  # EarlyStopping.best_weights by reference


@dataclass(frozen=True)
class Seen:
    """What a capture knows besides the callback: the hook the checkpoint is taken in, and
    whether this callback has already been called for it (it comes before ours in the list)."""

    hook: Hook | None
    saw_hook: bool


class Adapter(Protocol):
    kind: str

    def get(self, callback: keras.callbacks.Callback, seen: Seen) -> State: ...

    def set(self, callback: keras.callbacks.Callback, state: State) -> None: ...


class Attributes:
    """Public attributes read and assigned as they are, plus Keras' private counters of ``kind``."""

    def __init__(
        self,
        kind: str,
        names: tuple[str, ...],
        after_set: Callable[[keras.callbacks.Callback], None] | None = None,
    ) -> None:
        self.kind = kind
        self.names = names
        self.after_set = after_set

    def get(self, callback: keras.callbacks.Callback, seen: Seen) -> State:
        state: State = {n: getattr(callback, n) for n in self.names if hasattr(callback, n)}
        counters = private_counters(callback, self.kind.split(".")[-1])
        if counters:
            state["counters"] = counters
        return state

    def set(self, callback: keras.callbacks.Callback, state: State) -> None:
        for name in self.names:
            if name in state:
                setattr(callback, name, state[name])
        counters = state.get("counters")
        if isinstance(counters, dict):
            set_private_counters(callback, self.kind.split(".")[-1], counters)
        if self.after_set is not None:
            self.after_set(callback)


class EarlyStoppingAdapter(Attributes):
    """``best_weights`` by reference when they are the weights this checkpoint holds."""

    def __init__(self) -> None:
        super().__init__("keras.EarlyStopping", ("wait", "stopped_epoch", "best", "best_epoch"))

    def get(self, callback: keras.callbacks.Callback, seen: Seen) -> State:
        state = super().get(callback, seen)
        weights = getattr(callback, "best_weights", None)
        own = (
            seen.saw_hook
            and seen.hook is not None
            and seen.hook.name == "on_epoch_end"
            and getattr(callback, "best_epoch", None) == seen.hook.index
        )
        state["best_weights"] = None if weights is None else CHECKPOINT_WEIGHTS if own else list(weights)
        return state

    def set(self, callback: keras.callbacks.Callback, state: State) -> None:
        super().set(callback, state)
        weights = state.get("best_weights")
        if weights == CHECKPOINT_WEIGHTS:
            weights = callback.model.get_weights()  # the model holds the restored checkpoint now
        callback.best_weights = weights


class CSVLoggerAdapter:
    """The file as of the checkpoint: restored, then appended to."""

    kind = "keras.CSVLogger"

    def get(self, callback: keras.callbacks.Callback, seen: Seen) -> State:
        path = Path(callback.filename)
        text = (
            path.read_bytes().decode("utf-8", "surrogateescape")
            if callback.csv_file is not None and path.is_file()
            else None
        )
        header = callback.writer is not None and bool(callback.append_header)
        return {
            "keys": callback.keys,
            "append_header": bool(callback.append_header) and not header,
            "text": text,
        }

    def set(self, callback: keras.callbacks.Callback, state: State) -> None:
        text = state.get("text")
        if isinstance(text, str):
            if callback.csv_file is not None and not callback.csv_file.closed:
                callback.csv_file.close()
            path = Path(callback.filename)
            path.write_bytes(text.encode("utf-8", "surrogateescape"))
            callback.csv_file = open(path, "a")  # noqa: SIM115  # CSVLogger closes it at on_train_end
        callback.keys = state.get("keys")
        callback.writer = None
        callback.append_header = bool(state.get("append_header", True))


class Protocol_:
    """A callback's own ``get_state()``/``set_state(state)``."""

    kind = "protocol"

    def get(self, callback: keras.callbacks.Callback, seen: Seen) -> State:
        state = callback.get_state()
        if not isinstance(state, dict):
            raise TypeError(
                f"{type(callback).__name__}.get_state() must return a dict, got {type(state).__name__}"
            )
        return state

    def set(self, callback: keras.callbacks.Callback, state: State) -> None:
        callback.set_state(state)


def _rerun_train_begin(callback: keras.callbacks.Callback) -> None:
    callback.on_train_begin({})


_KERAS: dict[type, Adapter] = {
    keras.callbacks.ReduceLROnPlateau: Attributes(
        "keras.ReduceLROnPlateau", ("wait", "cooldown_counter", "best")
    ),
    keras.callbacks.EarlyStopping: EarlyStoppingAdapter(),
    keras.callbacks.ModelCheckpoint: Attributes("keras.ModelCheckpoint", ("best",)),
    keras.callbacks.CSVLogger: CSVLoggerAdapter(),
    keras.callbacks.BackupAndRestore: Attributes("keras.BackupAndRestore", ()),
    keras.callbacks.LearningRateScheduler: Attributes("keras.LearningRateScheduler", ()),
    keras.callbacks.History: Attributes("keras.History", ("epoch", "history")),
}
# CANDLE's, by class name and the attributes that hold their state.
_CANDLE: dict[str, tuple[tuple[str, ...], Adapter]] = {
    "CyclicLR": (
        ("clr_iterations", "trn_iterations"),
        Attributes("candle.CyclicLR", ("clr_iterations", "trn_iterations", "history"), _rerun_train_begin),
    ),
    "CandleRemoteMonitor": (("log_messages",), Attributes("candle.CandleRemoteMonitor", ("log_messages",))),
}
_STATELESS_KERAS = (keras.callbacks.ProgbarLogger, keras.callbacks.TerminateOnNaN)
_STATELESS_CANDLE = {"TerminateOnTimeOut"}
PROTOCOL = Protocol_()


def speaks_protocol(callback: object) -> bool:
    return callable(getattr(callback, "get_state", None)) and callable(getattr(callback, "set_state", None))


def adapter_for(callback: keras.callbacks.Callback) -> Adapter | None:
    """The adapter that saves ``callback``'s state, or None (unknown, or stateless)."""
    if speaks_protocol(callback):
        return PROTOCOL
    for cls in type(callback).__mro__:
        adapter = _KERAS.get(cls)
        if adapter is not None:
            return adapter
    known = _CANDLE.get(type(callback).__name__)
    if known is not None and all(hasattr(callback, n) for n in known[0]):
        return known[1]
    return None


def saw_its_epoch_begin(callback: keras.callbacks.Callback) -> bool:
    """Its state restored from a checkpoint taken inside an epoch already holds that epoch's
    ``on_epoch_begin``, which is not idempotent: a ``LearningRateScheduler`` (a schedule relative
    to the current rate would apply twice to the restored optimizer's) and a callback speaking the
    protocol.  The others' ``on_epoch_begin`` only sets up the epoch (a progress bar, an epoch
    index) and is called again when a training continues inside it."""
    return isinstance(callback, keras.callbacks.LearningRateScheduler) or speaks_protocol(callback)


def is_stateless(callback: keras.callbacks.Callback) -> bool:
    """Known to carry nothing from one epoch to the next (not saved, never named as missing)."""
    if isinstance(callback, CandleCkpt):  # another checkpoint callback: it checkpoints itself
        return True
    return isinstance(callback, _STATELESS_KERAS) or type(callback).__name__ in _STATELESS_CANDLE
