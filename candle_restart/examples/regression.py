"""A tiny CANDLE-style benchmark: a Dropout MLP trained with Adam and a learning-rate schedule.

It uses the checkpoint API as CANDLE benchmarks do, restarting before ``compile``::

    model = build_model(gParameters)
    ckpt = CandleCkptKeras(gParameters); ckpt.set_model(model)
    J = ckpt.restart(model)
    compile_model(model, gParameters)
    model.fit(..., initial_epoch=J["epoch"] if J else 0, callbacks=[ckpt])

or, with ``--api old``, as CANDLE's older generation did::

    J = restart(gParameters, model); compile_model(model, gParameters)
    ckpt = CandleCheckpointCallback(gParameters)

or, with ``--resumable_fit True``, through `candle_restart.keras.fit`, which
also continues an interrupted epoch at its next batch (shuffled per epoch
from ``rng_seed``).  Run it as
``python -m candle_restart.examples.regression --epochs 3 --output_dir out``;
``run(gParameters)`` is the entry point a task runner calls.  The data is
synthetic and fixed by ``rng_seed``, so an interrupted and resumed run ends
bit-for-bit where an uninterrupted one does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the benchmark imports Keras when it builds the model, not at import
    import keras

    from candle_restart.keras import CandleCheckpointCallback, CandleCkptKeras

Params = Mapping[str, object]  # gParameters
Logs = dict[str, object] | None  # what Keras passes its callbacks

DEFAULTS: dict[str, object] = {
    "epochs": 4,
    "batch_size": 32,
    "learning_rate": 0.01,
    "dropout": 0.2,
    "hidden": 32,
    "samples": 512,
    "rng_seed": 7,
    "ckpt_save_best_metric": "val_loss",
}


def make_data(seed: int, samples: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, 16)).astype("float32")
    w = rng.normal(size=(16, 1)).astype("float32")
    y = (np.tanh(x @ w) + 0.1 * rng.normal(size=(samples, 1))).astype("float32")
    cut = samples * 3 // 4
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _integer(params: Params, key: str) -> int:
    """``params[key]`` as an integer (a command line gives strings); ValueError naming the key."""
    value = params[key]
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"gParameters: {key}: must be an integer, got {value!r}")


def _real(params: Params, key: str) -> float:
    """``params[key]`` as a number; ValueError naming the key."""
    value = params[key]
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"gParameters: {key}: must be a number, got {value!r}")


def build_model(params: Params) -> keras.Model:
    """The model, built and not compiled (CANDLE's benchmarks restart at this point)."""
    import keras

    keras.utils.set_random_seed(_integer(params, "rng_seed"))
    return keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(_integer(params, "hidden"), activation="relu"),
            keras.layers.Dropout(_real(params, "dropout")),
            keras.layers.Dense(1),
        ]
    )


def compile_model(model: keras.Model, params: Params) -> None:
    """Adam with a learning-rate schedule (its step count and moments are what an exact restart needs)."""
    import keras

    schedule = keras.optimizers.schedules.ExponentialDecay(
        _real(params, "learning_rate"), decay_steps=10, decay_rate=0.9
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse", metrics=["mae"])


def _progress_reporter(path: str) -> keras.callbacks.Callback:
    """Test hook: write "epoch batch" lines to the FIFO at ``path`` after every batch.

    Reports only while someone has the FIFO open for reading (checked once, at
    start); then each write blocks until the reader keeps up.  If the FIFO
    ``<path>.ack`` exists too, each batch end then waits for one byte from it
    (the test's go-ahead), until its writer closes it: training in lockstep
    with the test, so a signal lands at the batch the test chose.
    """
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.fd: int | None = None
            self.ack: int | None = None
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                os.set_blocking(self.fd, True)
            except OSError:  # ENXIO: no reader, nobody is watching this run
                self.fd = None
            if self.fd is not None and os.path.exists(path + ".ack"):
                self.ack = os.open(path + ".ack", os.O_RDONLY)  # the test holds it open for writing
            self.epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
            if self.fd is not None:
                try:
                    os.write(self.fd, f"{self.epoch} {batch}\n".encode())
                except BrokenPipeError:
                    self.fd = None
            if self.ack is not None and not os.read(self.ack, 1):  # b"": the test let go
                os.close(self.ack)
                self.ack = None

    return Progress()


class _KillAfterEpoch:
    """Demo/test hook: SIGKILL this process once epoch N's checkpoint is committed (a real kill -9)."""

    def __init__(self, epoch: int, ckpt: CandleCkptKeras | CandleCheckpointCallback) -> None:
        self.epoch = epoch
        self.ckpt = ckpt

    def keras_callback(self) -> keras.callbacks.Callback:
        import keras

        hook = self

        class Kill(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
                if epoch + 1 == hook.epoch:
                    hook.ckpt.wait_for_commit()  # with asynchronous commits it may still be in flight
                    sys.stdout.flush()
                    os.kill(os.getpid(), signal.SIGKILL)

        return Kill()


def run(
    gParameters: Params, ckpt_class: type[CandleCkptKeras] | type[CandleCheckpointCallback] | None = None
) -> dict[str, float]:
    """Train per ``gParameters`` (CANDLE's ``run``); returns the final metrics.

    ``ckpt_class`` replaces `CandleCkptKeras` (tests use a subclass).
    """
    from candle_restart.ckpt import str2bool
    from candle_restart.keras import CandleCheckpointCallback, CandleCkptKeras, fit, restart

    params = {**DEFAULTS, **gParameters}
    verbose = str2bool(params.get("verbose", False))
    x, y, xv, yv = make_data(_integer(params, "rng_seed"), _integer(params, "samples"))
    model = build_model(params)
    if params.get("api", "new") == "old":
        J = restart(params, model, verbose=verbose)
        compile_model(model, params)
        ckpt = (ckpt_class or CandleCheckpointCallback)(params, verbose=verbose)
    else:
        ckpt = (ckpt_class or CandleCkptKeras)(params, verbose=verbose)
        ckpt.set_model(model)
        J = ckpt.restart(model)
        compile_model(model, params)
    initial_epoch = J["epoch"] if J else 0
    callbacks: list[keras.callbacks.Callback] = []
    if params.get("progress_fifo"):
        callbacks.append(_progress_reporter(str(params["progress_fifo"])))
    if params.get("kill_after_epoch"):
        callbacks.append(_KillAfterEpoch(_integer(params, "kill_after_epoch"), ckpt).keras_callback())
    batch_size, epochs = _integer(params, "batch_size"), _integer(params, "epochs")
    if str2bool(params.get("resumable_fit", False)):
        history = fit(
            model,
            x,
            y,
            ckpt=ckpt,
            validation_data=(xv, yv),
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            seed=_integer(params, "rng_seed"),
            verbose=0,
            callbacks=callbacks,
        )
    else:
        history = model.fit(
            x,
            y,
            validation_data=(xv, yv),
            epochs=epochs,
            initial_epoch=initial_epoch,
            batch_size=batch_size,
            shuffle=False,
            verbose=0,
            callbacks=[ckpt, *callbacks],
        )
    final = {k: float(v[-1]) for k, v in history.history.items()} if history.history else {}
    print(f"trained epochs {initial_epoch + 1}..{params['epochs']}; final: {final}", flush=True)
    if params.get("weights_out"):
        np.savez(str(params["weights_out"]), *[np.asarray(v.numpy()) for v in model.variables])
    return final


def parser() -> argparse.ArgumentParser:
    from candle_restart.ckpt import ckpt_parser

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--output_dir", default=".")
    p.add_argument("--rng_seed", type=int, default=DEFAULTS["rng_seed"])
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--samples", type=int, default=DEFAULTS["samples"])
    p.add_argument("--batch_size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--api", choices=("new", "old"), default="new", help="CANDLE's API generation to use")
    p.add_argument("--resumable_fit", default="False", help="True: train through candle_restart.keras.fit")
    p.add_argument("--progress_fifo", default=None, help="test hook: report batches to this FIFO")
    p.add_argument("--kill_after_epoch", type=int, default=0, help="SIGKILL self after this epoch (demo)")
    p.add_argument("--weights_out", default=None, help="write the final variables to this .npz")
    return ckpt_parser(p)


def main(argv: list[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    run({k: v for k, v in args.items() if v is not None})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
