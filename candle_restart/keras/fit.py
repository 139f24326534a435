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
from typing import Protocol, SupportsInt, TypeGuard

import keras
import numpy as np

from candle_restart.keras.callback import CandleCkptKeras

# Inputs `fit` can position inside an epoch: NumPy arrays, or lists, tuples or dicts of them.
Arrays = np.ndarray | list[np.ndarray] | tuple[np.ndarray, ...] | dict[str, np.ndarray]
Logs = dict[str, object]  # what Keras passes its callbacks


class Dataset(Protocol):
    """What `fit` uses of a ``tf.data.Dataset`` (this module does not import TensorFlow)."""

    def skip(self, count: int) -> Dataset: ...

    def take(self, count: int) -> Dataset: ...

    def cardinality(self) -> SupportsInt: ...


class _OneTraining(keras.callbacks.CallbackList):
    """Makes several ``model.fit`` calls look like one training to the callbacks."""

    def __init__(self, callbacks: list[keras.callbacks.Callback], **params: object) -> None:
        super().__init__(callbacks, **params)
        self._begun = False
        self._final_logs: Logs | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if not self._begun:
            self._begun = True
            super().on_train_begin(logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        self._final_logs = logs

    def finish(self) -> None:
        super().on_train_end(self._final_logs)

    @property
    def history(self) -> keras.callbacks.History:
        return next(c for c in self.callbacks if isinstance(c, keras.callbacks.History))


def _is_arrays(x: object) -> TypeGuard[Arrays]:
    if isinstance(x, np.ndarray):
        return True
    if isinstance(x, dict):
        return bool(x) and all(isinstance(v, np.ndarray) for v in x.values())
    if isinstance(x, (list, tuple)):
        return bool(x) and all(isinstance(v, np.ndarray) for v in x)
    return False


def _arrays(value: object, name: str) -> Arrays | None:
    """``value`` when it is None or `Arrays`; a TypeError naming ``name`` otherwise."""
    if value is None or _is_arrays(value):
        return value
    raise TypeError(
        f"candle_restart.keras.fit: {name} must be NumPy arrays (or lists or dicts of them) or "
        f"a tf.data.Dataset, got {type(value).__name__}"
    )


def _take(data: Arrays | None, index: np.ndarray | slice) -> Arrays | None:
    """``data[index]`` through lists, tuples and dicts of arrays (None stays None)."""
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: v[index] for k, v in data.items()}
    if isinstance(data, list):
        return [v[index] for v in data]
    if isinstance(data, tuple):
        return tuple(v[index] for v in data)
    return data[index]


def _num_samples(x: Arrays) -> int:
    first = next(iter(x.values())) if isinstance(x, dict) else x[0] if isinstance(x, (list, tuple)) else x
    return int(first.shape[0])


def _dataset_steps(dataset: Dataset) -> int | None:
    """Batches in ``dataset``, when known."""
    n = int(dataset.cardinality())
    return n if n >= 0 else None


def _is_dataset(x: object) -> TypeGuard[Dataset]:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "skip") and hasattr(x, "take")


def fit(
    model: keras.Model,
    x: object = None,
    y: object = None,
    *,
    ckpt: CandleCkptKeras,
    epochs: int | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    sample_weight: object = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: str | int = "auto",
    **fit_kwargs: object,
) -> keras.callbacks.History:
    """Train like ``model.fit`` and resume exactly (see the module docstring); returns the History.

    ``x``: arrays, a ``tf.data.Dataset``, a function ``epoch -> dataset or (x, y)``, or anything
    else ``model.fit`` takes (then an interrupted epoch is rerun from its start).
    """
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
    ckpt.callback_state.use(cb_list.callbacks)  # their state is checkpointed (candle_restart.keras.cbstate)
    common: dict[str, object] = {"verbose": verbose, **fit_kwargs}
    epoch_data: Callable[[int], object] | None = None  # the data of each epoch, when not ``x, y``
    if _is_dataset(x):
        dataset = x
        epoch_data, shuffle = (lambda _epoch: dataset), False
    elif callable(x):
        epoch_data = x
    try:
        if _is_arrays(x) or epoch_data is not None:
            by_epoch = _ByEpoch(model, ckpt, cb_list, common, batch_size, shuffle, seed)
            by_epoch.run(epoch_data, x, y, sample_weight, start, epochs, skip)
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
                callbacks=cb_list,
                **common,
            )
    finally:
        ckpt.batch_offset = 0
    cb_list.finish()
    return cb_list.history


class _ByEpoch:
    """One ``model.fit`` call per epoch, the first one from batch ``skip`` of its epoch."""

    def __init__(
        self,
        model: keras.Model,
        ckpt: CandleCkptKeras,
        callbacks: _OneTraining,
        common: dict[str, object],
        batch_size: int,
        shuffle: bool,
        seed: int | None,
    ) -> None:
        self.model, self.ckpt, self.callbacks, self.common = model, ckpt, callbacks, common
        self.batch_size, self.shuffle = batch_size, shuffle
        self.seed = int(ckpt.gParams.get("rng_seed", 0) or 0) if seed is None else seed

    def run(
        self,
        epoch_data: Callable[[int], object] | None,
        x: object,
        y: object,
        sample_weight: object,
        start: int,
        epochs: int,
        skip: int,
    ) -> None:
        """Epochs ``start`` to ``epochs``: of ``epoch_data(epoch)``, or else of ``x, y, sample_weight``."""
        for epoch in range(start, epochs):
            ex, ey, esw = (epoch_data(epoch), None, None) if epoch_data else (x, y, sample_weight)
            if isinstance(ex, tuple) and ey is None:
                ex, ey, esw = (*ex, None, None)[:3]
            self.ckpt.batch_offset = skip
            self._fit_epoch(epoch, ex, ey, esw, skip)
            skip = 0
            self.ckpt.batch_offset = 0
            if self.model.stop_training:
                break

    def _fit_epoch(self, epoch: int, ex: object, ey: object, esw: object, skip: int) -> None:
        data: dict[str, object]
        if _is_dataset(ex):
            dataset = ex.skip(skip) if skip else ex
            data = {"x": dataset}
            steps = _dataset_steps(dataset)
        else:
            arrays = _arrays(ex, "x")
            if arrays is None:
                raise TypeError("candle_restart.keras.fit: no training data (x is None)")
            order: np.ndarray | slice = slice(None)
            if self.shuffle:
                order = np.random.default_rng([self.seed, epoch]).permutation(_num_samples(arrays))
            if skip:
                whole = np.arange(_num_samples(arrays)) if isinstance(order, slice) else order
                order = whole[skip * self.batch_size :]
            x_part = _take(arrays, order)
            data = {
                "x": x_part,
                "y": _take(_arrays(ey, "y"), order),
                "sample_weight": _take(_arrays(esw, "sample_weight"), order),
                "batch_size": self.batch_size,
                "shuffle": False,
            }
            steps = -(-_num_samples(x_part) // self.batch_size) if x_part is not None else None
        # Keras sets no params on a CallbackList it is given: say how long this epoch is.
        self.callbacks.set_params({**(self.callbacks.params or {}), "steps": steps})
        self.model.fit(**data, epochs=epoch + 1, initial_epoch=epoch, callbacks=self.callbacks, **self.common)
