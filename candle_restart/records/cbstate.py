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
from candle_restart.records.fields import Fields, Key
from candle_restart.records.jsonio import JsonFileError, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue

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
    """Checks one parsed ``callbacks.json`` through `Fields`; every failure names the file and the key."""

    def __init__(self, path: str) -> None:
        self.check = Fields(path, CorruptCheckpointError)

    def values(self, value: JsonValue, key: Key) -> None:
        for item in _walk(value):
            problem = tag_problem(item)
            if problem is not None:
                raise self.check.fail(key, problem)

    def obj(self, value: object, key: Key) -> JsonObject:
        checked = self.check.obj(value, key)
        self.values(checked, key)
        return checked

    def read(self, data: object) -> CallbackStates:
        check = self.check
        data = check.obj(data)
        version = check.integer(data.get("schema_version"), "schema_version", 1)
        arrays = data.get("arrays_file")
        if arrays is not None and not (isinstance(arrays, str) and safe_relative(arrays)):
            raise check.expected("arrays_file", "a file name inside the checkpoint or null", arrays)
        entries = data.get("callbacks")
        if not isinstance(entries, list):
            raise check.expected("callbacks", "a list", entries)
        states = CallbackStates(
            hook=self.hook(data.get("hook")),
            callbacks=tuple(self.entry(e, i) for i, e in enumerate(entries)),
            arrays_file=arrays,
            not_checkpointed=self.uncarried(data.get("not_checkpointed", [])),
            schema_version=version,
        )
        if states.array_members() and arrays is None:
            raise check.fail("arrays_file", "is null but the states refer to arrays")
        return states

    def hook(self, value: object) -> Hook | None:
        if value is None:
            return None
        value = self.check.obj(value, "hook")
        return Hook(
            self.check.choice(value.get("name"), ("hook", "name"), HOOKS),
            self.check.integer(value.get("index"), ("hook", "index"), 0),
            self.obj(value.get("logs"), ("hook", "logs")),
        )

    def entry(self, value: object, i: int) -> CallbackEntry:
        key = ("callbacks", str(i))
        value = self.check.obj(value, key)
        return CallbackEntry(
            self.check.integer(value.get("slot"), (*key, "slot"), 0),
            self.check.string(value.get("name"), (*key, "name")),
            self.check.string(value.get("kind"), (*key, "kind")),
            self.check.flag(value.get("replay"), (*key, "replay")),
            self.obj(value.get("state"), (*key, "state")),
        )

    def uncarried(self, value: object) -> tuple[Uncarried, ...]:
        if not isinstance(value, list):
            raise self.check.expected("not_checkpointed", "a list", value)
        out = []
        for i, item in enumerate(value):
            key = ("not_checkpointed", str(i))
            item = self.check.obj(item, key)
            attrs = self.check.strings(item.get("attributes"), (*key, "attributes"))
            out.append(Uncarried(self.check.string(item.get("name"), (*key, "name")), tuple(attrs)))
        return tuple(out)
