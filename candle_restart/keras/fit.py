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
* a ``tf.data.Dataset`` that yields the same batches on every iteration; with
  ``steps_per_epoch`` it is read as ``model.fit`` reads it, one stream across epochs
  (an endless one in one ``model.fit`` call, positioned once on a restart);
* a function ``epoch -> tf.data.Dataset`` or ``epoch -> (x, y)``, for
  pipelines that shuffle per epoch (seed them with the epoch).

Any other input (a Python generator, a ``PyDataset``) cannot be positioned
inside an epoch: the interrupted epoch is rerun from its first batch, and the
log says so.  Each epoch runs as one ``model.fit`` call; the callbacks see
one training (one ``on_train_begin``, one ``on_train_end``), and ``ckpt``
runs before the caller's callbacks, so they see each epoch's checkpoint taken (with
``ckpt_async`` its commit may still be in flight: ``ckpt.wait_for_commit()`` waits for it).

A restart is the uninterrupted training's continuation for the callbacks too: one whose state
the checkpoint carries and that already began the epoch continued inside (a
``LearningRateScheduler``) does not begin it again; when the restored callbacks stop the
training at the checkpoint's epoch end (an ``EarlyStopping`` that stopped there) no batch
runs; a training already at its last epoch trains nothing and returns, as ``model.fit`` does.
(A plain ``model.fit`` restarted there runs one batch first: Keras checks ``stop_training``
only after a batch.)  ``initial_epoch`` may be passed as to ``model.fit``: it must be the
checkpoint's.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Protocol, SupportsInt, TypeGuard

import keras
import numpy as np

from candle_restart.keras.callback import CandleCkptKeras
from candle_restart.keras.cbknown import saw_its_epoch_begin

# Inputs `fit` can position inside an epoch: NumPy arrays, or lists, tuples or dicts of them.
Arrays = np.ndarray | list[np.ndarray] | tuple[np.ndarray, ...] | dict[str, np.ndarray]
Logs = dict[str, object]  # what Keras passes its callbacks
_ENDLESS = -1  # a dataset's cardinality when it repeats forever (tf.data.INFINITE_CARDINALITY)


class Dataset(Protocol):
    """What `fit` uses of a ``tf.data.Dataset`` (this module does not import TensorFlow)."""

    def skip(self, count: int) -> Dataset: ...

    def take(self, count: int) -> Dataset: ...

    def cardinality(self) -> SupportsInt: ...


class _TrainingOver(Exception):
    """Out of ``model.fit``: the callbacks a restart put back ended the training (see `_OneTraining`)."""


class _OneTraining(keras.callbacks.CallbackList):
    """Makes several ``model.fit`` calls look like one training to the callbacks.

    ``ckpt`` comes first.  At the first epoch begin it puts the other callbacks' states back and
    replays the hook its checkpoint was taken in (`candle_restart.keras.cbstate`).  If that ended
    the training (an ``EarlyStopping`` that stopped it at the checkpoint's epoch end), the
    uninterrupted training ended there: `_TrainingOver` is raised before a batch runs (Keras
    would run one).  When the training continues inside epoch ``inside``, the callbacks whose
    restored state already saw its begin (`saw_its_epoch_begin`) do not see it again.
    """

    def __init__(self, callbacks: list[keras.callbacks.Callback], inside: int | None, **params: object) -> None:
        super().__init__(callbacks, **params)
        self.inside = inside
        self._begun = self._epoch_begun = False
        self._final_logs: Logs | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if not self._begun:
            self._begun = True
            super().on_train_begin(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self._epoch_begun:
            return super().on_epoch_begin(epoch, logs)
        self._epoch_begun = True
        logs = dict(logs or {})
        ckpt, *others = self.callbacks
        ckpt.on_epoch_begin(epoch, logs)
        if self.model.stop_training and ckpt.restarted is not None and epoch != self.inside:
            raise _TrainingOver  # a replayed epoch end stopped it (inside an epoch: Keras' way)
        for callback in others:
            if epoch != self.inside or not saw_its_epoch_begin(callback):
                callback.on_epoch_begin(epoch, logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        self._final_logs = logs

    def finish(self, start: int) -> None:
        """The training's end: `on_train_end` of every callback.  When nothing was left to train (a
        training already at its last epoch) it is begun first, as ``model.fit`` does, and the other
        callbacks' states put back: their ``on_train_end`` acts as the first run's did (an
        ``EarlyStopping`` restores its best weights)."""
        self.on_train_begin()
        if not self._epoch_begun:
            self.callbacks[0].callback_state.restore(self.model, start, False)  # ckpt's
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


def epoch_window(batches: int | None, per_epoch: int, epoch: int) -> tuple[int, int]:
    """Where 0-based ``epoch`` starts in a dataset of ``batches`` batches (None: endless) and how
    many it trains, with ``steps_per_epoch`` = ``per_epoch``, as ``model.fit`` reads it: one
    iterator across epochs, started again once an epoch end finds it exhausted; an epoch that
    exhausts it ends early (Keras warns).  A pure function of its arguments."""
    seen = start = steps = 0
    for _ in range(epoch + 1):
        start = seen
        steps = per_epoch if batches is None else min(per_epoch, batches - seen)
        seen += steps
        if batches is not None and seen >= batches:
            seen = 0
    return start, steps


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
    given = fit_kwargs.pop("initial_epoch", start)  # model.fit's habit: the checkpoint's epoch is the only one
    if given not in (start, None):
        raise ValueError(f"candle_restart.keras.fit: initial_epoch is the checkpoint's, {start}; got {given!r}")
    position = ckpt.resume_position
    skip = int(position["batch"]) if position and position["epoch"] == start + 1 else 0
    batch_size = batch_size or 32
    epoch_data: Callable[[int], object] | None = None  # the data of each epoch, when not ``x, y``
    if _is_dataset(x):
        dataset = x
        epoch_data, shuffle = (lambda _epoch: dataset), False
    elif callable(x):
        epoch_data = x
    positioned = _is_arrays(x) or epoch_data is not None  # else an interrupted epoch reruns from its start
    cb_list = _OneTraining(
        [ckpt, *(callbacks or [])],
        start if skip and positioned else None,
        add_history=True,
        add_progbar=verbose not in (0, "0"),
        model=model,
        verbose=verbose,
        epochs=epochs,
    )
    ckpt.callback_state.use(cb_list.callbacks)  # their state is checkpointed (candle_restart.keras.cbstate)
    common: dict[str, object] = {"verbose": verbose, **fit_kwargs}
    try:
        if positioned:
            by_epoch = _ByEpoch(model, ckpt, cb_list, common, batch_size, shuffle, seed, one_stream=_is_dataset(x))
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
    except _TrainingOver:
        ckpt.info(f"restarting: the restored callbacks stop the training at epoch {start}, as before; no batch run")
    finally:
        ckpt.batch_offset = 0
    cb_list.finish(start)
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
        *,
        one_stream: bool = False,
    ) -> None:
        """``one_stream``: the data is one dataset for every epoch (``x``), which ``model.fit`` with
        ``steps_per_epoch`` reads as one stream across epochs (`_run_stream`, `epoch_window`)."""
        self.model, self.ckpt, self.callbacks, self.common = model, ckpt, callbacks, common
        self.batch_size, self.shuffle, self.one_stream = batch_size, shuffle, one_stream
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
        per_epoch = self.common.get("steps_per_epoch")
        if self.one_stream and _is_dataset(x) and int(x.cardinality()) == _ENDLESS and isinstance(per_epoch, Integral):
            return self._run_stream(x, int(per_epoch), start, epochs, skip)
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

    def _run_stream(self, dataset: Dataset, per_epoch: int, start: int, epochs: int, skip: int) -> None:
        """An endless dataset read ``per_epoch`` batches an epoch, as ``model.fit`` reads it: one
        stream across the epochs, positioned once (``skip`` batches into epoch ``start``)."""
        if skip and start < epochs:
            self.ckpt.batch_offset = skip
            self._fit_stream(dataset.skip(start * per_epoch + skip), start, start + 1, per_epoch - skip)
            self.ckpt.batch_offset = 0
            start += 1
            if self.model.stop_training:
                return
        if start < epochs:
            self._fit_stream(dataset.skip(start * per_epoch) if start else dataset, start, epochs, per_epoch)

    def _fit_stream(self, dataset: Dataset, initial: int, epochs: int, steps: int) -> None:
        self.callbacks.set_params({**(self.callbacks.params or {}), "steps": steps})
        fit_args = {**self.common, "steps_per_epoch": steps}
        self.model.fit(dataset, epochs=epochs, initial_epoch=initial, callbacks=self.callbacks, **fit_args)

    def _fit_epoch(self, epoch: int, ex: object, ey: object, esw: object, skip: int) -> None:
        data: dict[str, object]
        steps: int | None  # batches this call trains (the epoch's, less those a restart skips)
        fit_args = dict(self.common)
        if _is_dataset(ex):
            per_epoch, offset = fit_args.get("steps_per_epoch"), 0
            if isinstance(per_epoch, Integral) and int(per_epoch) > 0:
                offset, steps = epoch_window(_dataset_steps(ex), int(per_epoch), epoch if self.one_stream else 0)
                steps -= skip
                fit_args["steps_per_epoch"] = steps
            else:
                batches = _dataset_steps(ex)
                steps = None if batches is None else batches - skip
            data = {"x": ex.skip(offset + skip) if offset + skip else ex}
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
        self.model.fit(**data, epochs=epoch + 1, initial_epoch=epoch, callbacks=self.callbacks, **fit_args)
