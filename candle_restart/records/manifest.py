"""A sweep's manifest, ``<run_root>/.sweep-<name>.json``.  `SweepManifest` is its one reader and writer.

What defines the sweep (``name``, ``entry`` or ``command``, base ``params``, the names of the
``varied`` parameters), and, rewritten at each expansion, the executor's Slurm options
(``slurm``) and the ``restart`` policy that ``candle-restart resume RUN_ROOT`` uses.

Contract:

* `SweepManifest.from_json` accepts every manifest written so far (``slurm`` and ``restart``
  may be missing: read as None) and raises `ManifestError` (one line: the file, the key, the
  problem) for anything that is not one.  ``slurm`` and ``restart`` are kept as they were
  written: their rules are the sweep YAML's, checked where they are used
  (`candle_restart.sweep.schema`);
* `SweepManifest.to_bytes` is the file's content (indented JSON); the caller writes it
  atomically (`candle_restart.runtime.fsio`);
* `SweepManifest.read` raises ``FileNotFoundError`` for a missing file, `ManifestError` otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.fields import Fields
from candle_restart.records.jsonio import JsonFileError, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue

PREFIX, SUFFIX = ".sweep-", ".json"


class ManifestError(CkptError):
    """A sweep manifest that cannot be read or is not one (one line)."""


def manifest_path(run_root: Path, name: str) -> Path:
    """Where the manifest of sweep ``name`` lives."""
    return Path(run_root) / f"{PREFIX}{name}{SUFFIX}"


@dataclass(frozen=True)
class SweepManifest:
    """One sweep manifest (see the module docstring)."""

    name: str | None
    entry: str | None
    command: list[str] | None
    params: JsonObject
    varied: list[str] = field(default_factory=list)
    slurm: JsonValue = None
    restart: JsonValue = None

    @classmethod
    def from_json(cls, data: JsonValue, source: str) -> SweepManifest:
        """Validate a parsed manifest (``source`` names it in errors)."""
        check = Fields(source, ManifestError)
        data = check.obj(data)
        return cls(
            check.opt_string(data.get("name"), "name"),
            check.opt_string(data.get("entry"), "entry"),
            check.opt_strings(data.get("command"), "command"),
            check.obj(data.get("params", {}), "params"),
            check.strings(data.get("varied", []), "varied"),
            data.get("slurm"),
            data.get("restart"),
        )

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "entry": self.entry,
            "command": list(self.command) if self.command is not None else None,
            "params": self.params,
            "varied": list(self.varied),
            "slurm": self.slurm,
            "restart": self.restart,
        }

    def to_bytes(self) -> bytes:
        """The content of the manifest file."""
        return (json.dumps(self.to_json(), indent=1) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> SweepManifest:
        """The manifest in ``path`` (see the module contract)."""
        try:
            data = read_json(path)
        except JsonFileError as exc:
            raise ManifestError(exc.where, None, exc.problem) from None
        return cls.from_json(data, str(path))


def find(run_root: Path) -> list[Path]:
    """The manifests of ``run_root``, by name."""
    return sorted(Path(run_root).glob(f"{PREFIX}*{SUFFIX}"))


def read_all(run_root: Path) -> Iterator[tuple[Path, SweepManifest]]:
    """Each manifest of ``run_root`` with its path, by name; one removed meanwhile is skipped, one
    that cannot be read or is not one raises `ManifestError` naming it."""
    for path in find(run_root):
        try:
            yield path, SweepManifest.read(path)
        except FileNotFoundError:
            continue
