"""Every read of a private Keras attribute the callbacks make, in one place.

Why: three things the checkpoint callbacks need are not in Keras' public API.

* Whether a metric improves upward or downward: Keras keeps it as
  ``Metric._direction`` (``"up"``/``"down"``, set by metrics such as ``AUC``,
  ``Precision``; absent on most), and its own ``ModelCheckpoint`` and
  ``EarlyStopping`` read it the same way for ``mode="auto"``.
* Which other callbacks share a ``fit`` with ours (`calling_callback_list`): a Keras 3
  callback is not told its siblings.  ``model.fit`` wraps its ``callbacks`` argument in a
  ``keras.callbacks.CallbackList`` and calls ``CallbackList.on_train_begin``, which calls
  each callback's ``on_train_begin`` in turn; so, inside ours, a frame up the stack is that
  method, its local ``self`` the list.  We read frames (``sys._getframe``), not an attribute:
  it needs no cooperation from the trainer, works for every backend's ``fit`` and for a
  ``CallbackList`` (or subclass) passed in by the caller, and is checked by identity (the
  list must hold our callback), so a wrong frame is never taken for the list.
* The batch counters of ``ModelCheckpoint`` and ``BackupAndRestore``
  (``_batches_seen_since_last_saving``, ``_last_batch_seen``, and B&R's ``_current_epoch``):
  their position in a ``save_freq=N`` cycle, which the callback-state checkpoint carries
  (`private_counters`, `set_private_counters`); a release without them carries nothing of them.
* Which model ``ModelCheckpoint`` judges its metric by: it reads
  ``self.model`` in ``_set_monitor_op``; `MultiGPUCheckpoint` saves the inner
  model but must judge by the trained wrapper, so it swaps the callback's
  ``_model`` slot (behind Keras' ``Callback.model`` property) for that call.
* The live training state, inside an epoch: Keras' JAX trainer takes the
  variables' values out of the model when an epoch starts (``_jax_state``)
  and puts them back only at its end or when asked (``jax_state_sync``, which
  Keras' own ``Callback.model`` calls; Keras PR #23620 names it
  ``_backend_state_sync`` for every backend).  A snapshot taken between would
  read stale or purged values, so `sync_training_state` runs before each.
  TensorFlow and torch keep the values in the variables: nothing to do.

The order of ``fit(shuffle=True)`` over arrays is not read here: from Keras
3.16 (commit d746a99) it is seeded by the data adapter's own epoch counter,
which starts at 0 in every ``fit`` call, so a plain ``model.fit(...,
initial_epoch=k)`` would replay epoch 0's order.  No callback can reach that
adapter; `candle_restart.keras.fit` hands Keras each epoch's arrays already in
its order (a permutation of ``(seed, epoch)``) with ``shuffle=False``, so the
counter never decides it.  setup.cfg caps Keras below the first release with
the counter until a test of plain ``fit`` on it says what to do.

Keras versions: written against Keras 3.0 through 3.15 (``keras.src``
layout; ``Callback._model``, ``ModelCheckpoint._set_monitor_op`` and the JAX
trainer's ``jax_state_sync`` exist in all of them; checked again on 3.15.1
under TensorFlow, JAX and torch); `calling_callback_list` checked on Keras 3.15 (TensorFlow,
JAX and torch trainers all call ``callbacks.on_train_begin()`` on a ``CallbackList``).  If a
release calls the hooks some other way it answers None, and the caller says so in one log line.
If a release drops one, `metric_direction` answers None (the caller falls back to the metric's
name, or asks for ``ckpt_save_best_mode``), `judged_by` leaves the model as it is (Keras then
judges by the saved model, as a plain ``ModelCheckpoint`` does) and `sync_training_state`
calls ``_backend_state_sync`` where it exists.
Nothing else in the package reads an underscore attribute of a Keras object.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import keras


def metric_direction(model: keras.Model | None, name: str) -> str | None:
    """ "up" or "down" for the metric ``name`` of ``model`` (its compiled metrics included), or None."""
    if model is None:
        return None
    holders: Iterable[object] = getattr(model, "metrics", None) or []
    for holder in holders:
        for metric in [holder, *(getattr(holder, "metrics", None) or [])]:
            if getattr(metric, "name", None) == name:
                direction = getattr(metric, "_direction", None)
                if direction in ("up", "down"):
                    return str(direction)
    return None


@contextmanager
def judged_by(callback: keras.callbacks.Callback, model: object) -> Iterator[None]:
    """While inside, ``callback.model`` (Keras' ``_model`` slot) is ``model``; restored after."""
    if not hasattr(callback, "_model"):
        yield
        return
    saved = getattr(callback, "_model")  # noqa: B009
    setattr(callback, "_model", model)  # noqa: B010
    try:
        yield
    finally:
        setattr(callback, "_model", saved)  # noqa: B010


def calling_callback_list(callback: keras.callbacks.Callback, depth: int = 12) -> keras.callbacks.CallbackList | None:
    """The ``CallbackList`` whose hook is running ``callback``'s hook now, found up the stack; or None.

    Call it from inside one of ``callback``'s hooks (``on_train_begin``).  Only a list that holds
    ``callback`` itself (by identity) is returned; ``depth`` frames are looked at.
    """
    frame = sys._getframe(1)
    for _ in range(depth):
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, keras.callbacks.CallbackList) and any(
            c is callback for c in getattr(candidate, "callbacks", ())
        ):
            return candidate
        frame = frame.f_back  # type: ignore[assignment]
    return None


# Keras callbacks' counters kept in underscore attributes (checked on Keras 3.15), by class name.
PRIVATE_COUNTERS: dict[str, tuple[str, ...]] = {
    "ModelCheckpoint": ("_batches_seen_since_last_saving", "_last_batch_seen"),
    "BackupAndRestore": ("_batches_seen_since_last_saving", "_last_batch_seen", "_current_epoch"),
}


def private_counters(callback: keras.callbacks.Callback, kind: str) -> dict[str, object]:
    """The `PRIVATE_COUNTERS` of ``kind`` that ``callback`` has, by name."""
    return {n: getattr(callback, n) for n in PRIVATE_COUNTERS.get(kind, ()) if hasattr(callback, n)}


def set_private_counters(callback: keras.callbacks.Callback, kind: str, values: dict[str, object]) -> None:
    """Assign the saved `PRIVATE_COUNTERS` of ``kind`` (names this release does not have are skipped)."""
    for name in PRIVATE_COUNTERS.get(kind, ()):
        if name in values and hasattr(callback, name):
            setattr(callback, name, values[name])


def sync_training_state(model: object) -> None:
    """Put the live training state back into ``model``'s variables (JAX, inside an epoch).

    A no-op outside an epoch, on TensorFlow and torch, and for an object that
    is not a Keras model.
    """
    for name in ("_backend_state_sync", "jax_state_sync"):
        sync = getattr(model, name, None)
        if callable(sync):
            sync()
            return
