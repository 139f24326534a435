"""Keras model files (``.keras``, ``.weights.h5``) captured in memory and written later.

``model.save`` reads the live variables while it writes, so it cannot run
beside training.  `Capturer.capture` runs Keras' own saving walk (the one
``model.save`` and ``model.save_weights`` use) with a store that records
every value instead of writing it, and keeps a host copy of each;
`CapturedModelFile.write` later writes them in the layout of Keras' HDF5
store (streamed by `candle_restart.keras.h5stream`, no intermediate copy)
and zips the result as ``model.save`` does, so the file loads with
``keras.models.load_model`` / ``model.load_weights`` like any other (the
tests compare the two files).  ``located`` says where each saved variable
lies in the HDF5 weights, so the exact-resume state need not copy it again.

The walk and stores live in ``keras.src.saving.saving_lib``, which is not a
public API.  If a Keras release lacks what is used here, `available` is
False and the callback falls back to synchronous ``model.save`` (and says so
once in its log); nothing is ever written in a format Keras cannot read.
"""

from __future__ import annotations

import contextlib
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from candle_restart.errors import ParamError
from candle_restart.keras.h5stream import H5Image

try:
    from keras.src.saving import saving_lib as _lib

    _H5IOStore: Any = _lib.H5IOStore
    _DiskIOStore: Any = _lib.DiskIOStore
    _save_state: Any = _lib._save_state
    _serialize_model_as_json: Any = _lib._serialize_model_as_json
    _write_to_zip_recursively: Any = _lib._write_to_zip_recursively
    _NAMES = (_lib._METADATA_FILENAME, _lib._CONFIG_FILENAME, _lib._VARS_FNAME_H5, _lib._ASSETS_DIRNAME)
    available = True
except (ImportError, AttributeError):  # pragma: no cover - depends on the Keras release
    _H5IOStore = _DiskIOStore = object
    available = False

Entry = tuple[str, "dict[str, Any] | None", "dict[str, np.ndarray]"]


class _CountingAssets(_DiskIOStore):
    """Keras' asset store, counting the saveables that asked for an asset directory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.made = 0

    def make(self, path: str) -> Any:
        self.made += 1
        return super().make(path)


class _RecordingStore(_H5IOStore):
    """Stands where Keras expects its write-mode H5 store; records ``make`` and item assignments."""

    def __init__(self) -> None:  # no HDF5 file is opened
        self.entries: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = []
        self._current: dict[str, Any] = {}

    def __bool__(self) -> bool:
        return True

    def make(self, path: str, metadata: dict[str, Any] | None = None) -> _RecordingStore:
        self._current = {}
        self.entries.append((path, metadata, self._current))
        return self

    def __setitem__(self, key: str, value: Any) -> None:
        self._current[key] = value

    def close(self) -> None:
        pass


@dataclass
class CapturedModelFile:
    """One model file's content in host memory; `write` needs nothing from the live model."""

    weights_only: bool
    entries: list[Entry]
    config_json: str = ""
    metadata_json: str = ""
    assets: Any = None  # Keras' asset store (a temporary directory), for .keras files whose walk made one
    # id of each variable Keras saved -> its dataset in the HDF5 weights ("layers/dense/vars/0")
    located: dict[int, str] = field(default_factory=dict)

    @property
    def weights_member(self) -> str | None:
        """The name of the HDF5 weights inside the file (None: the file is the HDF5 weights)."""
        return None if self.weights_only else _NAMES[2]

    def write(self, sink: Any) -> None:
        """Write the file to ``sink`` (a binary file object with ``write`` and ``tell``), each byte once.

        The HDF5 weights are streamed (`candle_restart.keras.h5stream`) into
        the sink, or into the zip member as ``model.save`` names it; no
        intermediate copy of them is made.
        """
        image = H5Image(self.entries)
        if self.weights_only:
            image.write(sink)
            return
        metadata_name, config_name, weights_name, assets_name = _NAMES
        with zipfile.ZipFile(sink, "w") as archive:
            archive.writestr(metadata_name, self.metadata_json)
            archive.writestr(config_name, self.config_json)
            member = zipfile.ZipInfo(weights_name, date_time=time.localtime(time.time())[:6])
            member.external_attr = 0o600 << 16  # as writestr sets it
            member.file_size = image.size
            with archive.open(member, "w") as target:
                image.write(target)
            if self.assets is not None:  # none: no saveable asked for one (an empty one adds no member)
                _write_to_zip_recursively(archive, self.assets.working_dir, assets_name)

    def discard(self) -> None:
        """Remove the temporary asset directory (safe to call twice)."""
        if self.assets is not None:
            self.assets.close()
            self.assets = None


@dataclass(frozen=True)
class _Plan:
    """One saving walk's result: its key (the ids it holds for), what it found, where each variable lies."""

    key: tuple[int, ...]
    entries: list[tuple[str, Any, dict[str, Any]]]
    located: dict[int, str]


class Capturer:
    """Captures a model's file; remembers where Keras' saving walk found each variable.

    The walk (``dir()`` of every layer, fresh reference objects per call) costs
    more than copying a small model's values, so its result is reused while
    the model, its optimizer and the lists of their variables are the same
    objects.  The walk is redone every time when it met a value other than one
    of those variables (a second optimizer, a layer's plain array) or an
    object with assets, because the key cannot see those change.
    """

    def __init__(self) -> None:
        self._plans: dict[bool, _Plan] = {}

    def reset(self) -> None:
        """Forget the cached walks (another model)."""
        self._plans = {}

    @staticmethod
    def _variables(model: Any) -> list[Any]:
        optimizer = getattr(model, "optimizer", None)
        return [
            *model.variables,
            *getattr(model, "metrics_variables", []),
            *(optimizer.variables if optimizer is not None else []),
        ]

    def capture(self, model: Any, copy: Callable[[Any], np.ndarray], weights_only: bool) -> CapturedModelFile:
        """Take ``copy(value)`` of every value Keras would save of ``model`` (in this thread)."""
        known = self._variables(model)
        key = (id(model), id(getattr(model, "optimizer", None)), *(id(v) for v in known))
        plan = self._plans.get(weights_only)
        walk = plan is None or plan.key != key
        # A cached walk met no object with assets, so it needs no asset directory (a mkdtemp and rmtree).
        assets = None if weights_only or not walk else _CountingAssets(_NAMES[3], archive=None, mode="w")
        try:
            if walk or plan is None:
                store = _RecordingStore()
                _save_state(
                    model, weights_store=store, assets_store=assets, inner_path="", visited_saveables=set()
                )
                entries = [
                    (path, meta, _as_variables(model, path, values)) for path, meta, values in store.entries
                ]
                plan = _Plan(key, entries, _locations(entries))
                ids = {id(v) for v in known}
                reusable = all(
                    isinstance(v, keras.Variable) and id(v) in ids
                    for _p, _m, vals in entries
                    for v in vals.values()
                )
                if reusable and (assets is None or assets.made == 0):
                    self._plans[weights_only] = plan
                else:
                    self._plans.pop(weights_only, None)
            entries = [
                (path, meta, {k: copy(v) for k, v in values.items()}) for path, meta, values in plan.entries
            ]
            captured = CapturedModelFile(weights_only, entries, assets=assets, located=plan.located)
            if not weights_only:
                captured.config_json, captured.metadata_json = _serialize_model_as_json(model)
        except BaseException:
            if assets is not None:
                assets.close()
            raise
        return captured


def _locations(entries: list[tuple[str, Any, dict[str, Any]]]) -> dict[int, str]:
    """id of each variable among the walk's values -> the HDF5 dataset that stores it."""
    found: dict[int, str] = {}
    for path, _meta, values in entries:
        group = f"{path}/vars" if path else "vars"
        for key, value in values.items():
            if isinstance(value, keras.Variable) and "/" not in key:
                found.setdefault(id(value), f"{group}/{key}")
    return found


def _as_variables(model: Any, path: str, values: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's saved values mapped back to its variables, so later snapshots copy them directly.

    Keras' ``Optimizer.save_own_variables`` stores ``variable.numpy()`` for
    each of ``optimizer.variables`` under its index; anything else is left as it is.
    """
    owner: Any = model
    for part in path.split("/") if path else []:
        owner = getattr(owner, part, None)
    if not isinstance(owner, keras.optimizers.Optimizer):
        return values
    variables = list(owner.variables)
    if list(values) != [str(i) for i in range(len(variables))]:
        return values
    for variable, value in zip(variables, values.values(), strict=True):
        if tuple(np.shape(value)) != tuple(variable.shape):
            return values
    return {str(i): v for i, v in enumerate(variables)}


@contextlib.contextmanager
def saving_whole(weights_only: bool) -> Iterator[None]:
    """Around a whole model's save (captured or ``model.save``): Keras' refusal of a model it
    cannot serialise (a custom layer without ``get_config``) becomes one line naming the key that
    avoids it, ``ckpt_save_weights_only``, with Keras' own first sentence."""
    try:
        yield
    except NotImplementedError as exc:
        if weights_only or "get_config" not in str(exc):
            raise
        paragraph = " ".join(str(exc).strip().split("\n\n")[0].split())  # Keras wraps its lines
        said = paragraph.split(". ")[0].rstrip(".") or type(exc).__name__
        raise ParamError(
            "gParameters",
            "ckpt_save_weights_only",
            f"the model cannot be saved whole ({said}); set it to True to checkpoint the weights "
            "and the training state (the script then builds the model before a restart)",
        ) from exc
