"""The process-wide random generators a Keras training draws from, as arrays for a checkpoint.

Keras layers draw from their seed generators, which are model variables and
are saved with the model.  Some draws bypass them:

* torch backend: an unseeded ``Dropout`` takes torch's fast path and draws
  from torch's global generator (``keras/src/backend/torch/random.py``), as
  does torch's ``DataLoader`` (a base seed for every iterator Keras makes) and,
  up to Keras 3.15, ``fit(shuffle=True)``'s ``RandomSampler``.  CUDA devices
  have a generator each.
* up to Keras 3.15, ``fit(shuffle=True)`` over arrays draws its permutation
  from NumPy's global generator (JAX and NumPy backends), and a ``PyDataset``
  with ``shuffle=True`` shuffles with Python's ``random``.

These are the generators ``keras.utils.set_random_seed`` seeds.  `capture`
takes the state of each as a ``uint8`` array by name (``python.random``,
``numpy.random``, ``torch.cpu``, ``torch.cuda:N``); `restore` puts them back.
JAX keeps no global generator, and TensorFlow's backend draws through the
seed generators (its ``tf.random.shuffle`` of ``fit(shuffle=True)`` depends
on op seeds, which no state can restore: `candle_restart.keras.fit` shuffles
instead).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping

import keras
import numpy as np

_MT_WORDS = 624  # Mersenne Twister's state: 624 32-bit words and a position
_PYTHON = struct.Struct(f"<I{_MT_WORDS + 1}I?d")  # version, words and position, has gauss, gauss
_NUMPY = struct.Struct(f"<{_MT_WORDS}IIid")  # words, position, has gauss, gauss
_NUMPY_TAIL = struct.Struct("<Iid")  # _NUMPY after its words (packed apart: the words as one array)


def _bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).copy()


def _torch() -> object | None:
    """torch, when it is Keras' backend (another framework's generators are not training's)."""
    if keras.backend.backend() != "torch":
        return None
    import torch

    return torch


def capture() -> dict[str, np.ndarray]:
    """The state of every generator above, as ``uint8`` arrays by name (a few kB each)."""
    version, internal, gauss = random.getstate()
    states = {"python.random": _bytes(_PYTHON.pack(version, *internal, gauss is not None, gauss or 0.0))}
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    if kind == "MT19937":
        tail = _NUMPY_TAIL.pack(pos, has_gauss, cached)
        states["numpy.random"] = _bytes(np.asarray(keys, dtype="<u4").tobytes() + tail)
    torch = _torch()
    if torch is not None:
        states["torch.cpu"] = torch.get_rng_state().numpy().copy()  # type: ignore[attr-defined]
        cuda = torch.cuda  # type: ignore[attr-defined]
        if cuda.is_available() and cuda.is_initialized():
            for device in range(cuda.device_count()):
                states[f"torch.cuda:{device}"] = cuda.get_rng_state(device).numpy().copy()
    return states


def check(name: str, state: np.ndarray) -> None:
    """ValueError (naming the generator) unless ``state`` is one `capture` could have written."""
    sizes = {"python.random": _PYTHON.size, "numpy.random": _NUMPY.size}
    if state.dtype != np.uint8 or state.ndim != 1:
        raise ValueError(f"{name}: a generator state must be bytes, got {state.dtype} of shape {state.shape}")
    if name in sizes and state.size != sizes[name]:
        raise ValueError(f"{name}: its state must be {sizes[name]} bytes, got {state.size}")
    if name.startswith("torch.cuda:") and not name.removeprefix("torch.cuda:").isdigit():
        raise ValueError(f"{name}: not a CUDA device")


def restore(states: Mapping[str, np.ndarray]) -> list[str]:
    """Put each saved generator's state back; return the names restored.

    A generator this process lacks (a CUDA device on a CPU node, torch under
    another backend) or a name this version does not know is left out.
    """
    restored: list[str] = []
    torch = _torch()
    for name, state in states.items():
        check(name, state)
        if name == "python.random":
            version, *internal, has_gauss, gauss = _PYTHON.unpack(state.tobytes())
            random.setstate((version, tuple(internal), gauss if has_gauss else None))
        elif name == "numpy.random":
            *keys, pos, has_gauss, cached = _NUMPY.unpack(state.tobytes())
            np.random.set_state(("MT19937", np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
        elif torch is not None and name == "torch.cpu":
            torch.set_rng_state(torch.from_numpy(state.copy()))  # type: ignore[attr-defined]
        elif torch is not None and name.startswith("torch.cuda:"):
            cuda, device = torch.cuda, int(name.removeprefix("torch.cuda:"))  # type: ignore[attr-defined]
            if not (cuda.is_available() and device < cuda.device_count()):
                continue
            cuda.set_rng_state(torch.from_numpy(state.copy()), device)  # type: ignore[attr-defined]
        else:
            continue
        restored.append(name)
    return restored
