"""candle_restart.keras.fit with users' shapes of training: a training already finished, run
again; an ``EarlyStopping`` that stops at the epoch a preemption interrupted; a
``LearningRateScheduler`` relative to the current rate; a ``tf.data`` stream with
``steps_per_epoch``.  Each resumed run ends with the bits of one never interrupted (and, for the
stream, of Keras' own ``model.fit``).  In-process, as tests/keras/test_fit_inputs.py: a real
preemption request served at a batch end, then a fresh model restarted from the checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from candle_restart.ckpt import CkptLayout, CommitError
from candle_restart.errors import ParamError
from candle_restart.keras import CandleCkptKeras, fit
from candle_restart.keras.fit import epoch_window
from candle_restart.runtime.preempt import REQUEST, Preempted
from tests.keras.requests import RequestAt

X = np.random.default_rng(1).normal(size=(96, 4)).astype("float32")
Y = X.sum(axis=1, keepdims=True).astype("float32")
BATCH = 16  # 6 batches an epoch


def _model(dropout: bool = True) -> Any:
    keras.utils.set_random_seed(3)
    layers = [keras.Input((4,)), keras.layers.Dense(8, activation="relu")]
    layers += [keras.layers.Dropout(0.2)] if dropout else []
    model = keras.Sequential([*layers, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def _ckpt(tmp_path: Path, name: str, epochs: int) -> CandleCkptKeras:
    return CandleCkptKeras(
        {"epochs": epochs, "ckpt_directory": str(tmp_path / name), "ckpt_save_best": False}, logger=None
    )


def _interrupted(tmp_path: Path, name: str, epochs: int, at: tuple[int, int], **kwargs: Any) -> None:
    """``fit`` until the request at ``at`` stops it (Preempted), its handlers then disarmed."""
    ckpt = _ckpt(tmp_path, name, epochs)
    callbacks = [*kwargs.pop("callbacks", []), RequestAt(*at)]
    with pytest.raises(Preempted):
        fit(kwargs.pop("model"), ckpt=ckpt, epochs=epochs, callbacks=callbacks, verbose=0, **kwargs)
    ckpt._disarm()
    REQUEST.clear()


def _same_bits(a: keras.Model, b: keras.Model) -> bool:
    return all(np.asarray(u).tobytes() == np.asarray(v).tobytes() for u, v in zip(a.variables, b.variables, strict=True))


@pytest.mark.backends
def test_a_finished_training_run_again_trains_nothing_and_ends_as_model_fit_does(tmp_path: Path) -> None:
    """A job requeued after its final commit (killed before it exited, or run again by hand).  Its
    EarlyStopping puts back the best weights at the end, as the first run's did after its final
    commit (the best by its "max" mode is the first epoch, not the last one checkpointed)."""

    def best() -> keras.callbacks.EarlyStopping:
        return keras.callbacks.EarlyStopping(monitor="loss", mode="max", patience=5, restore_best_weights=True)

    done = _model()
    first = fit(done, X, Y, ckpt=_ckpt(tmp_path, "c", 2), epochs=2, batch_size=BATCH, callbacks=[best()], verbose=0)
    assert first.history["loss"][0] > first.history["loss"][1]  # the best weights are not the last
    again, ckpt = _model(), _ckpt(tmp_path, "c", 2)
    history = fit(again, X, Y, ckpt=ckpt, epochs=2, batch_size=BATCH, callbacks=[best()], verbose=0)
    assert ckpt.restarted is not None and ckpt.restarted["epoch"] == 2
    assert _same_bits(done, again) and history.history == first.history  # the first run's, put back
    assert CkptLayout.at(tmp_path / "c").list_epochs() == [1, 2]  # nothing committed again
    with pytest.raises(CommitError, match="the writer lease is not held"):  # given back, as after a training
        ckpt.engine.lease.fence()


@pytest.mark.backends
def test_an_early_stop_at_the_interrupted_epoch_ends_the_resumed_training_before_any_batch(
    tmp_path: Path,
) -> None:
    """The preemption comes in the last batch of the epoch whose end EarlyStopping stops at: the
    checkpoint is taken before EarlyStopping sees that epoch end, the restart replays it."""

    def stopper() -> keras.callbacks.EarlyStopping:  # stops at the end of the 2nd epoch: no delta is enough
        return keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9)

    whole = _model()
    kw: dict[str, Any] = {"batch_size": BATCH, "shuffle": True, "seed": 4}
    whole_history = fit(whole, X, Y, ckpt=_ckpt(tmp_path, "a", 5), epochs=5, callbacks=[stopper()], verbose=0, **kw)
    assert len(whole_history.history["loss"]) == 2  # the uninterrupted run stopped after its 2nd epoch

    _interrupted(tmp_path, "b", 5, (1, 5), model=_model(), x=X, y=Y, callbacks=[stopper()], **kw)
    resumed, ckpt = _model(), _ckpt(tmp_path, "b", 5)
    lines: list[str] = []
    ckpt.info = lines.append  # type: ignore[method-assign, assignment]
    history = fit(resumed, X, Y, ckpt=ckpt, epochs=5, callbacks=[stopper()], verbose=0, **kw)
    assert _same_bits(whole, resumed)  # not one batch more
    assert history.history == whole_history.history
    assert CkptLayout.at(tmp_path / "b").list_epochs() == [1, 2]
    assert any("the restored callbacks stop the training at epoch 2" in line for line in lines), lines


@pytest.mark.backends
def test_a_relative_learning_rate_schedule_is_applied_once_to_the_epoch_resumed_inside(tmp_path: Path) -> None:
    def run(name: str, at: tuple[int, int] | None) -> tuple[keras.Model, list[float]]:
        rates: list[float] = []

        def callbacks(model: keras.Model) -> list[keras.callbacks.Callback]:
            halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr * 0.5)
            seen = keras.callbacks.LambdaCallback(
                on_epoch_end=lambda e, logs: rates.append(float(model.optimizer.learning_rate))
            )
            return [halve, seen]

        kw: dict[str, Any] = {"x": X, "y": Y, "batch_size": BATCH, "shuffle": False}
        if at is not None:
            first = _model()
            _interrupted(tmp_path, name, 3, at, model=first, callbacks=callbacks(first), **kw)
        model = _model()
        fit(model, ckpt=_ckpt(tmp_path, name, 3), epochs=3, callbacks=callbacks(model), verbose=0, **kw)
        return model, rates

    whole, whole_rates = run("a", None)
    resumed, rates = run("b", (1, 2))
    assert whole_rates == pytest.approx([0.01, 0.005, 0.0025])
    assert rates[-2:] == whole_rates[-2:]  # the resumed epoch and the next (was 0.0025, 0.00125)
    assert _same_bits(whole, resumed)


@pytest.mark.parametrize(
    ("batches", "per_epoch", "windows"),
    [
        (None, 4, [(0, 4), (4, 4), (8, 4)]),  # endless: one stream
        (12, 4, [(0, 4), (4, 4), (8, 4), (0, 4)]),  # exhausted at an epoch end: started again
        (6, 4, [(0, 4), (4, 2), (0, 4), (4, 2)]),  # exhausted inside one: that epoch ends early
        (3, 4, [(0, 3), (0, 3)]),
        (8, 8, [(0, 8), (0, 8)]),
    ],
)
def test_epoch_windows_are_where_model_fit_reads_each_epoch(
    batches: int | None, per_epoch: int, windows: list[tuple[int, int]]
) -> None:
    assert [epoch_window(batches, per_epoch, e) for e in range(len(windows))] == windows


@pytest.mark.parametrize("repeat", [True, False], ids=["endless", "finite"])
def test_a_stream_with_steps_per_epoch_is_read_as_model_fit_reads_it_and_resumed_in_place(
    tmp_path: Path, repeat: bool
) -> None:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(BATCH)  # 6 batches
    dataset = dataset.repeat() if repeat else dataset
    steps = 4 if repeat else 3  # finite: a multiple of its 6 batches, as model.fit needs
    keras_own = _model(dropout=False)
    keras_own.fit(dataset, epochs=4, steps_per_epoch=steps, verbose=0)
    whole = _model(dropout=False)
    fit(whole, dataset, ckpt=_ckpt(tmp_path, "a", 4), epochs=4, steps_per_epoch=steps, verbose=0)
    assert _same_bits(keras_own, whole)
    _interrupted(tmp_path, "b", 4, (1, 1), model=_model(dropout=False), x=dataset, steps_per_epoch=steps)
    resumed = _model(dropout=False)
    fit(resumed, dataset, ckpt=_ckpt(tmp_path, "b", 4), epochs=4, steps_per_epoch=steps, verbose=0)
    assert _same_bits(whole, resumed)
    assert int(resumed.optimizer.iterations) == 4 * steps


def test_initial_epoch_may_be_passed_as_to_model_fit_but_only_the_checkpoints(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, "i", 1)
    fit(_model(), X, Y, ckpt=ckpt, epochs=1, batch_size=BATCH, initial_epoch=0, verbose=0)
    again = _ckpt(tmp_path, "i", 2)
    with pytest.raises(ValueError, match=r"initial_epoch is the checkpoint's, 1; got 0"):
        fit(_model(), X, Y, ckpt=again, epochs=2, batch_size=BATCH, initial_epoch=0, verbose=0)


class _Scale(keras.layers.Layer):
    """A user's layer built from an array and without ``get_config``: Keras cannot save it whole."""

    def __init__(self, table: np.ndarray, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table

    def call(self, x: Any) -> Any:
        return x * self.table


@pytest.mark.parametrize("asynchronous", [True, False])
def test_a_model_keras_cannot_save_whole_is_one_line_naming_ckpt_save_weights_only(
    tmp_path: Path, asynchronous: bool
) -> None:
    def model() -> keras.Model:
        keras.utils.set_random_seed(3)
        built = keras.Sequential([keras.Input((4,)), _Scale(np.ones(4, "float32")), keras.layers.Dense(1)])
        built.compile(optimizer="adam", loss="mse")
        return built

    params = {"epochs": 2, "ckpt_directory": str(tmp_path / "w"), "ckpt_save_best": False, "ckpt_async": asynchronous}
    refused = CandleCkptKeras(params, logger=None)
    with pytest.raises(ParamError, match=r"^gParameters: ckpt_save_weights_only: the model cannot be saved whole "):
        model().fit(X, Y, epochs=2, callbacks=[refused], verbose=0)
    refused._disarm()  # fit ended by an exception: no on_train_end
    refused.release_writer()
    assert CkptLayout.at(tmp_path / "w").list_epochs() == []
    weights_only = {**params, "ckpt_save_weights_only": True}
    model().fit(X, Y, epochs=1, callbacks=[CandleCkptKeras(weights_only, logger=None)], verbose=0)
    again, ckpt = model(), CandleCkptKeras(weights_only, logger=None)
    assert ckpt.restart(again) is not None and ckpt.restarted is not None and ckpt.restarted["epoch"] == 1
