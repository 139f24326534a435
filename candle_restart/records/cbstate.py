"""``callbacks.json``: the state of the other callbacks of a ``fit``, saved with a checkpoint.

This module is the format's one reader and writer (`CallbackStates`); it imports the standard
library only, so the file is readable without TensorFlow.

Shape (one JSON object, strict JSON, ``indent=1``):

* ``schema_version``: 1.
* ``hook``: null, or where the checkpoint was taken: ``{"name", "index", "logs"}`` with
  ``name`` ``"on_epoch_end"`` (``index``: the 0-based epoch) or ``"on_train_batch_end"``
  (``index``: the batch), and ``logs`` the metrics the callbacks were handed there.  The
  callbacks listed after the checkpoint callback had not seen that hook yet when the checkpoint
  was taken (``replay`` true): a restart calls it on them again with these logs.
* ``callbacks``: one entry per checkpointed callback, in the order of the callback list:
  ``{"slot", "name", "kind", "replay", "state"}``: ``slot`` its 0-based place in the list,
  ``name`` its class name, ``kind`` which adapter wrote ``state`` (``keras.EarlyStopping``,
  ``candle.CyclicLR``, ``protocol``: the callback's own ``get_state``), ``state`` an object.
* ``arrays_file``: null, or the ``.npz`` beside this file that holds the arrays ``state`` refers to.
* ``not_checkpointed``: ``[{"name", "attributes"}]``: stateful callbacks this checkpoint could
  not carry, and the attributes seen changing during training.

Values inside ``state`` and ``logs`` are JSON, plus three tagged objects (each exactly these keys),
so that a restored value has the type and bits it had: ``{"$float": "inf" | "-inf" | "nan"}``
(strict JSON has no non-finite numbers), ``{"$numpy": DTYPE, "value": NUMBER}`` (a NumPy scalar; a non-finite one's
``value`` is ``"inf"``, ``"-inf"`` or ``"nan"``),
``{"$array": MEMBER}`` (an array of ``arrays_file``).  An object with another key starting with
``$`` is refused.  `CallbackStates.from_json` raises `CorruptCheckpointError` in one line naming
the file, the key and the problem; keys it does not know are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from candle_restart.errors import CheckpointIOError, CorruptCheckpointError
from candle_restart.records.ckptinfo import safe_relative
from candle_restart.records.jsonio import JsonFileError, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue, is_int

SCHEMA_VERSION = 1
CALLBACKS_FILE = "callbacks.json"
ARRAYS_FILE = "callbacks.npz"
HOOKS = ("on_epoch_end", "on_train_batch_end")
FLOAT_TAG, NUMPY_TAG, ARRAY_TAG = "$float", "$numpy", "$array"
NON_FINITE = ("inf", "-inf", "nan")


@dataclass(frozen=True)
class Hook:
    """Where the checkpoint was taken: ``name`` (one of `HOOKS`), its ``index``, its ``logs``."""

    name: str
    index: int
    logs: JsonObject

    def to_dict(self) -> JsonObject:
        return {"name": self.name, "index": self.index, "logs": self.logs}


@dataclass(frozen=True)
class CallbackEntry:
    """One checkpointed callback (see the module docstring)."""

    slot: int
    name: str
    kind: str
    replay: bool
    state: JsonObject

    def to_dict(self) -> JsonObject:
        return {
            "slot": self.slot,
            "name": self.name,
            "kind": self.kind,
            "replay": self.replay,
            "state": self.state,
        }


@dataclass(frozen=True)
class Uncarried:
    """A stateful callback the checkpoint does not carry, and the attributes seen changing."""

    name: str
    attributes: tuple[str, ...]

    def to_dict(self) -> JsonObject:
        return {"name": self.name, "attributes": list(self.attributes)}


@dataclass(frozen=True)
class CallbackStates:
    """One ``callbacks.json`` (see the module docstring)."""

    hook: Hook | None
    callbacks: tuple[CallbackEntry, ...]
    arrays_file: str | None = None
    not_checkpointed: tuple[Uncarried, ...] = field(default=())
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> JsonObject:
        """The file's object."""
        return {
            "schema_version": self.schema_version,
            "hook": None if self.hook is None else self.hook.to_dict(),
            "callbacks": [e.to_dict() for e in self.callbacks],
            "arrays_file": self.arrays_file,
            "not_checkpointed": [u.to_dict() for u in self.not_checkpointed],
        }

    def to_bytes(self) -> bytes:
        """The file's bytes: strict JSON (``ValueError`` on a non-finite float: tag it), a trailing newline."""
        return (json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n").encode()

    def array_members(self) -> list[str]:
        """Every ``$array`` member the entries and logs refer to, in order of appearance."""
        found: list[str] = []
        for entry in self.callbacks:
            found.extend(_arrays_in(entry.state))
        return found

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.callbacks]

    @classmethod
    def from_json(cls, data: object, path: Path | str) -> CallbackStates:
        return _Reader(str(path)).read(data)

    @classmethod
    def read(cls, path: Path) -> CallbackStates:
        """Read and check one ``callbacks.json`` (`CorruptCheckpointError`; `CheckpointIOError` for
        an I/O error that says nothing of the content)."""
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise CorruptCheckpointError(str(path), None, "is missing") from None
        except JsonFileError as exc:
            if exc.transient:
                raise CheckpointIOError(str(path), None, exc.problem) from None
            raise CorruptCheckpointError(str(path), None, exc.problem) from None
        return cls.from_json(data, path)


read_callback_states = CallbackStates.read  # the name the Keras side reads it by


def tag_problem(value: JsonValue) -> str | None:
    """Why ``value`` (an object whose keys start with ``$``) is not a valid tag; None if it is one."""
    if not isinstance(value, dict):
        return None
    tagged = [k for k in value if k.startswith("$")]
    if not tagged:
        return None
    if set(value) == {FLOAT_TAG}:
        return None if value[FLOAT_TAG] in NON_FINITE else f"{FLOAT_TAG} must be one of {NON_FINITE}"
    if set(value) == {NUMPY_TAG, "value"}:
        number = value["value"]
        ok = isinstance(value[NUMPY_TAG], str) and (
            isinstance(number, (int, float, bool)) or number in NON_FINITE
        )
        return None if ok else f"{NUMPY_TAG} needs a dtype name and a number"
    if set(value) == {ARRAY_TAG}:
        member = value[ARRAY_TAG]
        return None if isinstance(member, str) and member else f"{ARRAY_TAG} must name an array"
    return f"unknown tagged object with keys {sorted(value)}"


def _walk(value: JsonValue) -> Iterator[JsonValue]:
    yield value
    if isinstance(value, list):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, dict) and not any(k.startswith("$") for k in value):
        for item in value.values():
            yield from _walk(item)


def _arrays_in(value: JsonValue) -> list[str]:
    return [v[ARRAY_TAG] for v in _walk(value) if isinstance(v, dict) and isinstance(v.get(ARRAY_TAG), str)]  # type: ignore[misc]


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str | None, problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(self.path, key, problem)

    def values(self, value: JsonValue, key: str) -> None:
        for item in _walk(value):
            problem = tag_problem(item)
            if problem is not None:
                raise self.fail(key, problem)

    def obj(self, value: object, key: str) -> JsonObject:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be an object, got {type(value).__name__}")
        self.values(value, key)
        return value

    def read(self, data: object) -> CallbackStates:
        if not isinstance(data, dict):
            raise self.fail(None, f"must hold a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if not is_int(version) or version < 1:  # type: ignore[operator]
            raise self.fail("schema_version", f"must be an integer >= 1, got {version!r}")
        arrays = data.get("arrays_file")
        if arrays is not None and not (isinstance(arrays, str) and safe_relative(arrays)):
            raise self.fail(
                "arrays_file", f"must be a file name inside the checkpoint or null, got {arrays!r}"
            )
        entries = data.get("callbacks")
        if not isinstance(entries, list):
            raise self.fail("callbacks", "must be a list")
        states = CallbackStates(
            hook=self.hook(data.get("hook")),
            callbacks=tuple(self.entry(e, i) for i, e in enumerate(entries)),
            arrays_file=arrays,
            not_checkpointed=self.uncarried(data.get("not_checkpointed", [])),
            schema_version=version,  # type: ignore[arg-type]
        )
        if states.array_members() and arrays is None:
            raise self.fail("arrays_file", "is null but the states refer to arrays")
        return states

    def hook(self, value: object) -> Hook | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail("hook", f"must be null or an object, got {value!r}")
        name, index = value.get("name"), value.get("index")
        if name not in HOOKS:
            raise self.fail("hook", f"name must be one of {HOOKS}, got {name!r}")
        if not is_int(index) or index < 0:  # type: ignore[operator]
            raise self.fail("hook", f"index must be an integer >= 0, got {index!r}")
        return Hook(str(name), int(index), self.obj(value.get("logs"), "hook.logs"))  # type: ignore[arg-type]

    def entry(self, value: object, i: int) -> CallbackEntry:
        key = f"callbacks[{i}]"
        if not isinstance(value, dict):
            raise self.fail(key, "must be an object")
        slot, name, kind, replay = (value.get(k) for k in ("slot", "name", "kind", "replay"))
        if not is_int(slot) or slot < 0:  # type: ignore[operator]
            raise self.fail(key, f"slot must be an integer >= 0, got {slot!r}")
        if not isinstance(name, str) or not isinstance(kind, str):
            raise self.fail(key, "name and kind must be strings")
        if not isinstance(replay, bool):
            raise self.fail(key, f"replay must be true or false, got {replay!r}")
        return CallbackEntry(int(slot), name, kind, replay, self.obj(value.get("state"), f"{key}.state"))  # type: ignore[arg-type]

    def uncarried(self, value: object) -> tuple[Uncarried, ...]:
        if not isinstance(value, list):
            raise self.fail("not_checkpointed", "must be a list")
        out = []
        for item in value:
            attrs = item.get("attributes") if isinstance(item, dict) else None
            name = item.get("name") if isinstance(item, dict) else None
            if (
                not isinstance(name, str)
                or not isinstance(attrs, list)
                or not all(isinstance(a, str) for a in attrs)
            ):
                raise self.fail("not_checkpointed", f"entries must be {{name, attributes}}, got {item!r}")
            out.append(Uncarried(name, tuple(attrs)))
        return tuple(out)
