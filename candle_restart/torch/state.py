"""What a PyTorch checkpoint captures and restores: the objects given to ``set_model``, and every RNG.

`Parts.of` sorts what ``set_model`` was given: objects with ``state_dict()`` and
``load_state_dict()`` (model, optimizer, schedulers, a GradScaler, a stateful sampler or
loader, anything else of that kind), ``torch.Generator`` objects (saved with
``get_state``), and a ``dataloader`` or ``sampler`` without state, kept for the generators
they draw their order from.  A list or tuple under one key is its items, ``name/0``,
``name/1`` ...  Anything else is refused in one line.

`capture_rng` / `restore_rng`: torch's CPU generator, every CUDA device's (where CUDA is
available), NumPy's global generator, Python's ``random`` and the named generators.

`collect` turns all of it into a `TorchState` record and the tensors it refers to (each tensor
stored once: two state-dict entries that view the same memory, tied weights, share a name);
`restore` loads a record and its tensors back into the objects.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard

import numpy as np
import torch

from candle_restart.errors import RestartError
from candle_restart.records.jsontypes import JsonObject
from candle_restart.records.torchstate import TorchState, TreeError, decode_tree, encode_tree

POSITION_ONLY = ("dataloader", "sampler")  # keys whose object may lack state: its order comes from the RNG
_GENERATOR_ATTRS = (("generator",), ("sampler", "generator"), ("batch_sampler", "sampler", "generator"))

Copy = Callable[[str, torch.Tensor], torch.Tensor]  # a host copy of a tensor, under its name
Rng = dict[str, Any]  # RNG states by kind, as their libraries hand them out


class Stateful(Protocol):
    """What ``set_model`` checkpoints: an object with ``state_dict()`` and ``load_state_dict()``."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any, /) -> Any: ...


def stateful(obj: object) -> TypeGuard[Stateful]:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


def _describe(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


@dataclass
class Parts:
    """The objects of one ``set_model`` call, sorted (see the module docstring)."""

    objects: dict[str, Stateful] = field(default_factory=dict)
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    loaders: dict[str, object] = field(default_factory=dict)
    not_saved: list[str] = field(default_factory=list)

    @property
    def model(self) -> Stateful | None:
        return self.objects.get("model")

    @classmethod
    def of(cls, given: Mapping[str, object]) -> Parts:
        """Sort ``given`` (``set_model``'s dict); TypeError (one line) for a value that cannot be saved."""
        parts = cls()
        for key, value in given.items():
            if not isinstance(key, str) or not key or "/" in key or key.startswith("$"):
                raise TypeError(f"set_model: key {key!r}: must be a name without '/'")
            items = list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)]
            for i, obj in items:
                name = key if i is None else f"{key}/{i}"
                if isinstance(obj, torch.Generator):
                    parts.generators[name] = obj
                elif stateful(obj):
                    parts.objects[name] = obj
                elif key in POSITION_ONLY:
                    parts.loaders[name] = obj
                    parts.not_saved.append(
                        f"{name}: a {_describe(obj)} has no state_dict(); its order is replayed from the RNG state"
                    )
                else:
                    raise TypeError(
                        f"set_model: {name!r}: a {_describe(obj)} has no state_dict()/load_state_dict() to checkpoint"
                    )
        if "model" not in parts.objects:
            raise TypeError(
                "set_model: needs {'model': module, 'optimizer': optimizer, ...}; 'model' is missing"
            )
        for name, obj in [*parts.loaders.items(), *parts.objects.items()]:
            for attrs in _GENERATOR_ATTRS:
                found: object = obj
                for attr in attrs:
                    found = getattr(found, attr, None)
                if isinstance(found, torch.Generator) and all(
                    found is not g for g in parts.generators.values()
                ):
                    parts.generators[".".join((name, *attrs))] = found
        return parts


# ----- random number generators --------------------------------------------------------------
def capture_rng(generators: Mapping[str, torch.Generator]) -> Rng:
    """Every RNG's state now (private copies)."""
    cuda = list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else []
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "generators": {name: g.get_state() for name, g in generators.items()},
    }


def restore_rng(rng: Rng, generators: Mapping[str, torch.Generator], log: Callable[[str], None]) -> None:
    """Set every RNG from ``rng`` (as `capture_rng` returns it, or as decoded from a checkpoint)."""
    torch.set_rng_state(rng["torch"])
    cuda = rng.get("cuda") or []
    if cuda and torch.cuda.is_available():
        count = min(len(cuda), torch.cuda.device_count())
        for device in range(count):
            torch.cuda.set_rng_state(cuda[device], device)
        if count < len(cuda):
            log(
                f"restarting: the checkpoint has {len(cuda)} CUDA RNG states; this node {count}: the rest are unused"
            )
    elif cuda:
        log("restarting: the checkpoint was written with CUDA; its CUDA RNG state is not used on this node")
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    saved = rng.get("generators") or {}
    for name, g in generators.items():
        if name in saved:
            g.set_state(saved[name])
        else:
            log(f"restarting: generator '{name}' is not in the checkpoint: left as it is")


# ----- the record and its tensors ------------------------------------------------------------
def _storage_key(t: torch.Tensor) -> tuple[object, ...]:
    try:
        ptr = t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        ptr = id(t)
    return (ptr, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype, str(t.device))


def collect(
    parts: Parts, rng: Rng, epoch_rng: Rng | None, copy: Copy, tensors_file: str
) -> tuple[TorchState, dict[str, torch.Tensor]]:
    """Every part's ``state_dict()`` and the RNG states as a record and its tensors (by name).

    ``copy`` makes each tensor's host copy; the record refers to the tensors by name.  A value
    that cannot be saved without pickle, or a tensor on the ``meta`` device (no data), is a
    TypeError of one line naming its path, raised before anything is written.
    """
    tensors: dict[str, torch.Tensor] = {}
    seen: dict[tuple[object, ...], str] = {}

    def leaf(value: object, path: str) -> JsonObject | None:
        if isinstance(value, torch.Tensor):
            if value.device.type == "meta":  # refused before any copy is made or deferred
                raise TreeError(path, "a tensor on the meta device has no data to save")
            key = _storage_key(value)
            if key not in seen:
                tensors[path] = copy(path, value)
                seen[key] = path
            return {"$tensor": seen[key]}
        if isinstance(value, np.ndarray | np.generic):
            tensors[path] = torch.from_numpy(np.array(value, copy=True).reshape(np.shape(value)))
            return {"$ndarray" if isinstance(value, np.ndarray) else "$ndscalar": path}
        return None

    try:
        trees = {name: encode_tree(obj.state_dict(), leaf, name) for name, obj in parts.objects.items()}
        record = TorchState(
            tensors_file=tensors_file,
            parts=trees,
            rng=encode_tree(rng, leaf, "rng"),
            epoch_rng=None if epoch_rng is None else encode_tree(epoch_rng, leaf, "epoch_rng"),
            torch_version=torch.__version__,
            not_saved=tuple(parts.not_saved),
        )
    except TreeError as exc:
        raise TypeError(f"checkpoint: {exc}") from None
    return record, tensors


@dataclass(frozen=True)
class Restored:
    """What `restore` loaded besides the objects: the RNG as the interrupted epoch began, if saved."""

    epoch_rng: Rng | None


def restore(
    record: TorchState,
    tensors: Mapping[str, torch.Tensor],
    parts: Parts,
    where: str,
    log: Callable[[str], None],
) -> Restored:
    """Load ``record`` and its ``tensors`` into ``parts`` and set every RNG."""

    def load(tag: str, name: str, path: str) -> object:
        tensor = tensors.get(name)
        if tensor is None:
            raise TreeError(path, f"names tensor {name!r}, which {record.tensors_file} does not hold")
        if tag == "$tensor":
            return tensor
        array = tensor.numpy()
        return array if tag == "$ndarray" else array[()]

    for name in parts.objects:
        if name not in record.parts:
            log(f"restarting: '{name}' is not in the checkpoint: left as it is")
    try:
        for name, tree in record.parts.items():
            obj = parts.objects.get(name)
            if obj is None:
                log(f"restarting: the checkpoint holds '{name}' but set_model was given none: not restored")
                continue
            load_into(obj, name, decode_tree(tree, load, name), where)
        restore_rng(_rng(decode_tree(record.rng, load, "rng"), where, "rng"), parts.generators, log)
        epoch_rng = (
            None
            if record.epoch_rng is None
            else _rng(decode_tree(record.epoch_rng, load, "epoch_rng"), where, "epoch_rng")
        )
    except TreeError as exc:
        raise RestartError(where, exc.path, exc.problem) from None
    return Restored(epoch_rng)


def _rng(value: object, where: str, key: str) -> Rng:
    if not isinstance(value, dict) or not {"torch", "numpy", "python"} <= set(value):
        raise RestartError(where, key, "must hold the torch, numpy and python RNG states")
    return value


def load_into(obj: Stateful, name: str, state: object, where: str) -> None:
    """``obj.load_state_dict(state)``; what it raises becomes one line naming the part."""
    try:
        obj.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        line = " ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or type(exc).__name__
        raise RestartError(where, name, f"does not fit the {name} given to set_model: {line[:400]}") from None
