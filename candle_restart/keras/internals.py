"""Every read of a private Keras attribute the callbacks make, in one place.

Why: three things the checkpoint callbacks need are not in Keras' public API.

* Whether a metric improves upward or downward: Keras keeps it as
  ``Metric._direction`` (``"up"``/``"down"``, set by metrics such as ``AUC``,
  ``Precision``; absent on most), and its own ``ModelCheckpoint`` and
  ``EarlyStopping`` read it the same way for ``mode="auto"``.
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
under TensorFlow, JAX and torch).  If a release drops one, `metric_direction`
answers None (the caller falls back to the metric's name, or asks for
``ckpt_save_best_mode``), `judged_by` leaves the model as it is (Keras then
judges by the saved model, as a plain ``ModelCheckpoint`` does) and
`sync_training_state` calls ``_backend_state_sync`` where it exists.
Nothing else in the package reads an underscore attribute of a Keras object.
"""

from __future__ import annotations

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
