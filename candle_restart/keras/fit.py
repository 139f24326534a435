"""`fit`: ``model.fit`` that resumes exactly, inside an epoch included.

Put it where the benchmark calls ``model.fit``::

    from candle_restart.keras import CandleCkptKeras, fit
    ckpt = CandleCkptKeras(gParameters)
    history = fit(model, x, y, ckpt=ckpt, epochs=..., batch_size=..., validation_data=...)

It restarts ``model`` from the newest checkpoint that verifies (unless the
caller already called ``ckpt.restart``), then trains the remaining batches of
an interrupted epoch and the remaining epochs.  A run interrupted at any
batch and resumed this way ends with the same bits as one never interrupted,
for these inputs:

* arrays (NumPy, or lists/dicts of them): the batch order of epoch ``e`` is a
  permutation seeded by ``(seed, e)`` when ``shuffle`` is on (``seed``
  defaults to gParameters' ``rng_seed``), the identity otherwise;
* a ``tf.data.Dataset`` that yields the same batches on every iteration;
* a function ``epoch -> tf.data.Dataset`` or ``epoch -> (x, y)``, for
  pipelines that shuffle per epoch (seed them with the epoch).

Any other input (a Python generator, a ``PyDataset``) cannot be positioned
inside an epoch: the interrupted epoch is rerun from its first batch, and the
log says so.  Each epoch runs as one ``model.fit`` call; the callbacks see
one training (one ``on_train_begin``, one ``on_train_end``), and ``ckpt``
runs before the caller's callbacks, so they see each epoch's checkpoint taken (with
``ckpt_async`` its commit may still be in flight: ``ckpt.wait_for_commit()`` waits for it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from candle_restart.keras.callback import CandleCkptKeras


class _OneTraining(keras.callbacks.CallbackList):
    """Makes several ``model.fit`` calls look like one training to the callbacks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._begun = False
        self._final_logs: dict[str, Any] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._begun:
            self._begun = True
            super().on_train_begin(logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._final_logs = logs

    def finish(self) -> None:
        super().on_train_end(self._final_logs)

    @property
    def history(self) -> Any:
        return next(c for c in self.callbacks if isinstance(c, keras.callbacks.History))


def _is_arrays(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return True
    if isinstance(x, dict):
        return bool(x) and all(isinstance(v, np.ndarray) for v in x.values())
    if isinstance(x, (list, tuple)):
        return bool(x) and all(isinstance(v, np.ndarray) for v in x)
    return False


def _take(data: Any, index: np.ndarray | slice) -> Any:
    """``data[index]`` through lists, tuples and dicts of arrays (None stays None)."""
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: v[index] for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(v[index] for v in data)
    return data[index]


def _num_samples(x: Any) -> int:
    first = next(iter(x.values())) if isinstance(x, dict) else x[0] if isinstance(x, (list, tuple)) else x
    return int(first.shape[0])


def _steps(data: dict[str, Any], batch_size: int) -> int | None:
    """Batches in this fit call's epoch, when known."""
    if _is_dataset(data["x"]):
        n = int(data["x"].cardinality())
        return n if n >= 0 else None
    return -(-_num_samples(data["x"]) // batch_size)


def _is_dataset(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "skip") and hasattr(x, "take")


def fit(
    model: Any,
    x: Any = None,
    y: Any = None,
    *,
    ckpt: CandleCkptKeras,
    epochs: int | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    sample_weight: Any = None,
    callbacks: list[Any] | None = None,
    verbose: Any = "auto",
    **fit_kwargs: Any,
) -> Any:
    """Train like ``model.fit`` and resume exactly (see the module docstring); returns the History."""
    if fit_kwargs.get("validation_split"):
        raise ValueError(
            "candle_restart.keras.fit: validation_split would split the per-epoch shuffled data differently "
            "every epoch; split once beforehand and pass validation_data"
        )
    epochs = int(epochs if epochs is not None else ckpt.epoch_max)
    if not ckpt.restart_done:
        ckpt.restart(model)
    ckpt.set_model(model)
    J = ckpt.restarted
    start = int(J["epoch"]) if J else 0
    position = ckpt.resume_position
    skip = int(position["batch"]) if position and position["epoch"] == start + 1 else 0
    batch_size = batch_size or 32
    cb_list = _OneTraining(
        [ckpt, *(callbacks or [])],
        add_history=True,
        add_progbar=verbose not in (0, "0"),
        model=model,
        verbose=verbose,
        epochs=epochs,
    )
    common = {"callbacks": cb_list, "verbose": verbose, **fit_kwargs}
    try:
        if _is_arrays(x) or callable(x):
            _fit_by_epoch(
                model, x, y, sample_weight, start, epochs, skip, batch_size, shuffle, seed, ckpt, common
            )
        elif _is_dataset(x):
            _fit_by_epoch(
                model,
                lambda _epoch: x,
                None,
                None,
                start,
                epochs,
                skip,
                batch_size,
                False,
                seed,
                ckpt,
                common,
            )
        else:
            if skip:
                ckpt.info(
                    f"restarting: cannot position {type(x).__name__} inside an epoch; rerunning epoch {start + 1}"
                )
            model.fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                initial_epoch=start,
                shuffle=shuffle,
                sample_weight=sample_weight,
                **common,
            )
    finally:
        ckpt.batch_offset = 0
    cb_list.finish()
    return cb_list.history


def _fit_by_epoch(
    model: Any,
    x: Any,
    y: Any,
    sample_weight: Any,
    start: int,
    epochs: int,
    skip: int,
    batch_size: int,
    shuffle: bool,
    seed: int | None,
    ckpt: CandleCkptKeras,
    common: dict[str, Any],
) -> None:
    if seed is None:
        seed = int(ckpt.gParams.get("rng_seed", 0) or 0)
    data_fn: Callable[[int], Any] | None = x if callable(x) else None
    for epoch in range(start, epochs):
        ex, ey, esw = (data_fn(epoch), None, None) if data_fn else (x, y, sample_weight)
        if isinstance(ex, tuple) and ey is None:
            ex, ey, esw = (*ex, None)[:3]
        if _is_dataset(ex):
            data: dict[str, Any] = {"x": ex.skip(skip) if skip else ex}
        else:
            order: np.ndarray | slice = slice(None)
            if shuffle:
                order = np.random.default_rng([seed, epoch]).permutation(_num_samples(ex))
            if skip:
                order = (np.arange(_num_samples(ex)) if isinstance(order, slice) else order)[
                    skip * batch_size :
                ]
            data = {
                "x": _take(ex, order),
                "y": _take(ey, order),
                "sample_weight": _take(esw, order),
                "batch_size": batch_size,
                "shuffle": False,
            }
        ckpt.batch_offset = skip
        callbacks = common["callbacks"]  # Keras sets no params on a CallbackList it is given: say how long
        callbacks.set_params({**(callbacks.params or {}), "steps": _steps(data, batch_size)})
        model.fit(**data, epochs=epoch + 1, initial_epoch=epoch, **common)
        skip = 0
        ckpt.batch_offset = 0
        if model.stop_training:
            break
