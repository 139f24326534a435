"""The other callbacks of a ``fit``: their state saved with each checkpoint and put back on restart.

A script keeps writing ``callbacks=[ckpt, reduce_lr, early_stop, csv_logger]``; at each commit
`CallbackState` saves the state of the callbacks beside ``ckpt`` into ``callbacks.json`` (and the
arrays, if any, into ``callbacks.npz``; both listed in ``ckpt-info.json``'s ``files`` with size
and CRC-32 and verified like every other file; the record is
`candle_restart.records.cbstate`), and a restart puts it back, so the learning rate drops and
training stops at the epochs an uninterrupted run's would.

Finding the callbacks.  Keras 3 does not tell a callback its siblings.  ``ckpt.on_train_begin``
finds the ``CallbackList`` that is calling it up the stack
(`candle_restart.keras.internals.calling_callback_list`: robust to every backend's ``fit`` and
to lists passed in, checked by identity); `candle_restart.keras.fit` hands its list over
explicitly (`use`).  When neither finds it, one log line says the other callbacks' state is not
checkpointed.

When the state is taken and put back.  A checkpoint is taken inside ``ckpt``'s own hook
(``on_epoch_end``, or ``on_train_batch_end`` for a mid-epoch one); the callbacks before it in
the list have already seen that hook, those after it have not.  So the record keeps the hook's
logs, and a restart, after setting every saved state, calls that hook again on the callbacks
that came after ``ckpt`` (``replay``), with one logs dict handed along as ``CallbackList`` does:
each callback sees each epoch once, in its place, as in an uninterrupted run (``CSVLogger``
writes that epoch's row then; ``ReduceLROnPlateau`` lowers the restored learning rate then).
States are put back at the first ``on_epoch_begin`` of ``ckpt`` in the resumed training, once
every callback's ``on_train_begin`` (which resets most of them) has run.  A mid-epoch hook is
replayed only when the training continues at the next batch (`candle_restart.keras.fit`).

The protocol, for a callback of one's own: define ``get_state()`` returning a dict of
JSON-able values (None, bool, int, float, str, lists, dicts with string keys not starting
with ``$``) and NumPy arrays and scalars, and ``set_state(state)`` taking that dict back.
``get_state`` is called at each commit (in the training thread); ``set_state`` once, in the
resumed training, after every ``on_train_begin`` and before its first batch; floats keep their
bits and NumPy scalars their dtype.  A callback that neither speaks it nor is known
(`candle_restart.keras.cbknown`) is watched: its scalar attributes (and the lengths of its
lists and dicts) are compared with what they were at the first epoch, and at the first commit
that finds one changed it is named once in ``ckpt.log``: ``not checkpointed: MyCallback: its
attributes x, y change during training``.

``BackupAndRestore`` in the same ``fit``: our checkpoint is the one that restores.  When a
restart restored a checkpoint, a ``BackupAndRestore`` after ``ckpt`` in the list does not
load its own backup in that training (its ``on_train_begin`` is skipped, and the log says so);
one before ``ckpt`` has already loaded it, and the log asks for ``ckpt`` to be put first.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import keras
import numpy as np

from candle_restart.ckpt.log import Logs
from candle_restart.ckpt.sink import CheckpointFiles, Snapshot
from candle_restart.keras.cbknown import Seen, adapter_for, is_stateless
from candle_restart.keras.cbvalues import Unencodable, decode, encode
from candle_restart.keras.internals import calling_callback_list
from candle_restart.keras.npz import read_npz, write_npz
from candle_restart.records.cbstate import (
    ARRAYS_FILE,
    CALLBACKS_FILE,
    CallbackEntry,
    CallbackStates,
    Hook,
    Uncarried,
    read_callback_states,
)

Callback: TypeAlias = keras.callbacks.Callback
_SKIP_ATTRIBUTES = {"model", "_model", "params", "validation_data"}


@dataclass(frozen=True)
class Captured:
    """The state of the callbacks at one commit, encoded (``arrays`` by member name)."""

    record: CallbackStates
    arrays: dict[str, np.ndarray]

    def write(self, files: CheckpointFiles) -> None:
        with files.create(CALLBACKS_FILE) as sink:
            sink.write(self.record.to_bytes())
        if self.arrays:
            with files.create(ARRAYS_FILE) as sink:
                write_npz(sink, self.arrays)

    def write_into(self, directory: Path) -> None:
        """The synchronous path: plain files (the caller checksums the directory afterwards)."""
        (directory / CALLBACKS_FILE).write_bytes(self.record.to_bytes())
        if self.arrays:
            with open(directory / ARRAYS_FILE, "wb") as f:
                write_npz(f, self.arrays)


class WithCallbacks:
    """A checkpoint's `Snapshot` with the callbacks' state written first (a `Snapshot` itself)."""

    def __init__(self, inner: Snapshot, captured: Captured) -> None:
        self.inner = inner
        self.captured = captured
        self.model_file = inner.model_file

    def write(self, files: CheckpointFiles) -> None:
        self.captured.write(files)
        self.inner.write(files)

    def discard(self) -> None:
        self.inner.discard()


@dataclass(frozen=True)
class _Loaded:
    record: CallbackStates
    arrays: dict[str, np.ndarray]


# model -> the callback state a restart read for it, put back when its training starts.
_PENDING: weakref.WeakKeyDictionary[Any, _Loaded] = weakref.WeakKeyDictionary()


def _scalars(callback: Callback) -> dict[str, object]:
    """What is watched of an unknown callback: scalar attributes, and container lengths."""
    out: dict[str, object] = {}
    for name, value in vars(callback).items():
        if name in _SKIP_ATTRIBUTES:
            continue
        if value is None or isinstance(value, (bool, int, float, str, np.generic)):
            out[name] = value
        elif isinstance(value, (list, dict, tuple, set)):
            out[name] = ("len", len(value))
    return out


def _changed(before: dict[str, object], now: dict[str, object]) -> list[str]:
    def differs(a: object, b: object) -> bool:
        try:
            return bool(a != b) and not (a != a and b != b)  # NaN stays NaN: unchanged
        except (TypeError, ValueError):
            return True

    return sorted(n for n in now.keys() | before.keys() if differs(before.get(n), now.get(n)))


class CallbackState:
    """The other callbacks of one checkpoint callback's trainings (see the module docstring)."""

    def __init__(self, logs: Logs) -> None:
        self._logs = logs
        self._explicit: Sequence[Callback] | None = None
        self._callbacks: list[Callback] | None = None  # this training's list (ours included)
        self._ours: Callback | None = None
        self._hook: Hook | None = None
        self._watch: dict[int, dict[str, object]] | None = None  # unknown callbacks at the first epoch
        self._uncarried: dict[int, Uncarried] = {}
        self._shadowed: list[Callback] = []

    # ----- a training -----------------------------------------------------------------------
    def use(self, callbacks: Sequence[Callback]) -> None:
        """The callbacks of the next training, given explicitly (``candle_restart.keras.fit``)."""
        self._explicit = callbacks

    def begin(self, ours: Callback, restored: bool) -> None:
        """``ours.on_train_begin`` (call it from there: the list is found up the stack).

        ``restored``: a restart loaded a checkpoint into the model for this training.
        """
        found: Sequence[Callback] | None = self._explicit
        self._explicit = None  # for this training only
        if found is None:
            calling = calling_callback_list(ours)
            found = None if calling is None else calling.callbacks
        self._ours, self._watch, self._uncarried, self._hook = ours, None, {}, None
        if found is None:
            self._callbacks = None
            self._logs.info(
                f"callback state: the callbacks of this fit were not found (Keras {keras.__version__}): "
                "the other callbacks' state is not checkpointed; candle_restart.keras.fit passes them"
            )
            return
        self._callbacks = list(found)
        if restored:
            self._keep_backup_out(ours)

    def _keep_backup_out(self, ours: Callback) -> None:
        assert self._callbacks is not None
        mine = self._slot(ours)
        for slot, callback in enumerate(self._callbacks):
            if not isinstance(callback, keras.callbacks.BackupAndRestore):
                continue
            if slot > mine:
                callback.on_train_begin = lambda logs=None: None
                self._shadowed.append(callback)
                self._logs.info(
                    "callback state: BackupAndRestore: its backup is not loaded: training resumes from this checkpoint"
                )
            else:
                self._logs.warning(
                    "callback state: BackupAndRestore comes before the checkpoint callback and has loaded its own "
                    "backup over the restored checkpoint: put the checkpoint callback first"
                )

    def end(self) -> None:
        """The training ended: give the shadowed ``on_train_begin`` back, forget the list."""
        for callback in self._shadowed:
            vars(callback).pop("on_train_begin", None)
        self._shadowed, self._callbacks, self._explicit, self._hook = [], None, None, None

    def at(self, name: str, index: int, logs: dict[str, object] | None) -> None:
        """``ours`` is in hook ``name`` (index: epoch or batch) with ``logs``: a checkpoint taken now says so."""
        self._hook = Hook(name, int(index), logs or {})  # type: ignore[arg-type]  # encoded at capture

    def _slot(self, callback: Callback) -> int:
        assert self._callbacks is not None
        return next(i for i, c in enumerate(self._callbacks) if c is callback)

    # ----- saving ---------------------------------------------------------------------------
    def capture(self) -> Captured | None:
        """The state of the other callbacks now (training thread); None: nothing to save."""
        if self._callbacks is None or self._ours is None:
            return None
        mine = self._slot(self._ours)
        arrays: dict[str, np.ndarray] = {}
        entries: list[CallbackEntry] = []
        for slot, callback in enumerate(self._callbacks):
            if callback is self._ours:
                continue
            adapter = adapter_for(callback)
            if adapter is None:
                self._watch_unknown(slot, callback)
                continue
            name = type(callback).__name__
            try:
                raw = adapter.get(callback, Seen(self._hook, slot < mine))
                state = encode(raw, arrays, f"{slot}")
            except (Unencodable, TypeError, OSError) as exc:
                self._name_uncarried(slot, callback, f"its state cannot be saved: {exc}", ())
                continue
            assert isinstance(state, dict)
            entries.append(
                CallbackEntry(slot, name, adapter.kind, slot > mine and self._hook is not None, state)
            )
        if not entries and not self._uncarried:
            return None
        hook = None
        if self._hook is not None:
            logs = encode(dict(self._hook.logs), arrays, "logs")
            hook = Hook(self._hook.name, self._hook.index, logs)  # type: ignore[arg-type]
        record = CallbackStates(
            hook, tuple(entries), ARRAYS_FILE if arrays else None, tuple(self._uncarried.values())
        )
        return Captured(record, arrays)

    def _watch_unknown(self, slot: int, callback: Callback) -> None:
        if (
            is_stateless(callback)
            or slot in self._uncarried
            or self._watch is None
            or slot not in self._watch
        ):
            return
        changed = _changed(self._watch[slot], _scalars(callback))
        if changed:
            self._name_uncarried(
                slot, callback, f"its attributes {', '.join(changed)} change during training", changed
            )

    def _name_uncarried(self, slot: int, callback: Callback, why: str, attributes: Sequence[str]) -> None:
        name = type(callback).__name__
        self._uncarried[slot] = Uncarried(name, tuple(attributes))
        self._logs.warning(f"not checkpointed: {name}: {why}")

    # ----- restoring ------------------------------------------------------------------------
    def load(self, directory: Path, model: object, verified: set[str]) -> CallbackStates | None:
        """Read ``directory``'s callback state (if any) and keep it for ``model``'s next training."""
        _PENDING.pop(model, None)
        path = directory / CALLBACKS_FILE
        if not path.is_file():
            return None
        record = read_callback_states(path)
        arrays: dict[str, np.ndarray] = {}
        if record.arrays_file is not None:
            arrays = read_npz(directory / record.arrays_file, record.arrays_file not in verified)
        _PENDING[model] = _Loaded(record, arrays)
        return record

    def restore(self, model: object, epoch: int, continuing: bool) -> None:
        """Put the saved state back (``ours.on_epoch_begin(epoch)``, the first of a resumed training).

        ``continuing``: a mid-epoch checkpoint is resumed at its next batch (else its epoch reruns).
        Also starts watching the unknown callbacks.
        """
        loaded = _PENDING.pop(model, None)
        if loaded is not None and self._callbacks is not None:
            self._apply(loaded, epoch, continuing)
        if self._watch is None and self._callbacks is not None:
            self._watch = {
                slot: _scalars(c)
                for slot, c in enumerate(self._callbacks)
                if adapter_for(c) is None and c is not self._ours
            }

    def _apply(self, loaded: _Loaded, epoch: int, continuing: bool) -> None:
        assert self._callbacks is not None
        record, arrays = loaded.record, loaded.arrays
        matched = self._match(record.callbacks)
        restored, replayed = [], []
        for entry, callback in matched:
            adapter = adapter_for(callback)
            if adapter is None or adapter.kind != entry.kind:
                self._logs.warning(f"callback state: {entry.name}: saved as {entry.kind}, not restored")
                continue
            state = decode(entry.state, arrays)
            assert isinstance(state, dict)
            adapter.set(callback, state)
            restored.append(entry.name)
        hook = record.hook
        due = hook is not None and (
            (hook.name == "on_epoch_end" and hook.index + 1 == epoch)
            or (hook.name == "on_train_batch_end" and continuing)
        )
        if hook is not None and due:
            logs = decode(hook.logs, arrays)
            for entry, callback in matched:
                if entry.replay and entry.name in restored:
                    getattr(callback, hook.name)(hook.index, logs)
                    replayed.append(entry.name)
        elif hook is not None and any(e.replay for e, _ in matched):
            self._logs.info(
                f"callback state: {hook.name} {hook.index} is not replayed: this training starts elsewhere"
            )
        missing = sorted(set(record.names) - {e.name for e, _ in matched})
        line = f"restarting: callback state restored: {', '.join(restored) or 'none'}"
        if replayed:
            line += f"; {hook.name} of {'epoch' if hook.name == 'on_epoch_end' else 'batch'} {hook.index + 1} replayed on {', '.join(replayed)}"  # type: ignore[union-attr]
        if missing:
            line += f"; not in this fit: {', '.join(missing)}"
        if record.not_checkpointed:
            line += f"; not checkpointed: {', '.join(u.name for u in record.not_checkpointed)}"
        self._logs.info(line)
        if getattr(getattr(self._ours, "model", None), "stop_training", False):
            self._logs.info(
                "restarting: the restored callbacks had stopped this training (a plain model.fit still runs "
                "one batch; candle_restart.keras.fit none)"
            )

    def _match(self, entries: Sequence[CallbackEntry]) -> list[tuple[CallbackEntry, Callback]]:
        """Saved entries paired with this training's callbacks: same slot and class, else the
        same class by order of appearance."""
        assert self._callbacks is not None
        live = self._callbacks
        used: set[int] = set()
        pairs: list[tuple[CallbackEntry, Callback]] = []
        for entry in entries:
            slot = entry.slot
            if not (slot < len(live) and type(live[slot]).__name__ == entry.name and slot not in used):
                slot = next(
                    (i for i, c in enumerate(live) if type(c).__name__ == entry.name and i not in used), -1
                )
            if slot >= 0:
                used.add(slot)
                pairs.append((entry, live[slot]))
        return pairs


def pending_names(model: object) -> list[str] | None:
    """The callbacks whose state a restart read for ``model`` (None: none read)."""
    loaded = _PENDING.get(model)
    return None if loaded is None else loaded.record.names


def merged_logs(model: Any, logs: dict[str, object]) -> None:
    """Update a batch's ``logs`` (in place) with the model's metric results, after a restart added
    the saved accumulators to them: the callbacks after ours then see what an uninterrupted run's saw."""
    results = model.get_metrics_result()
    for key in logs:
        if key in results:
            logs[key] = float(keras.ops.convert_to_numpy(results[key]))
