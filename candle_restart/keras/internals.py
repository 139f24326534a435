"""Every read of a private Keras attribute the callbacks make, in one place.

Why: two things the checkpoint callbacks need are not in Keras' public API.

* Whether a metric improves upward or downward: Keras keeps it as
  ``Metric._direction`` (``"up"``/``"down"``, set by metrics such as ``AUC``,
  ``Precision``; absent on most), and its own ``ModelCheckpoint`` and
  ``EarlyStopping`` read it the same way for ``mode="auto"``.
* Which model ``ModelCheckpoint`` judges its metric by: it reads
  ``self.model`` in ``_set_monitor_op``; `MultiGPUCheckpoint` saves the inner
  model but must judge by the trained wrapper, so it swaps the callback's
  ``_model`` slot (behind Keras' ``Callback.model`` property) for that call.

Keras versions: written against Keras 3.0 through 3.15 (``keras.src``
layout; ``Callback._model`` and ``ModelCheckpoint._set_monitor_op`` exist in
all of them).  If a release drops one, `metric_direction` answers None (the
caller falls back to the metric's name, or asks for ``ckpt_save_best_mode``)
and `judged_by` leaves the model as it is (Keras then judges by the saved
model, as a plain ``ModelCheckpoint`` does).  Nothing else in the package
reads an underscore attribute of a Keras object.
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
