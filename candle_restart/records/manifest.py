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
* `read` raises ``FileNotFoundError`` for a missing file, `ManifestError` otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from candle_restart.errors import CkptError
from candle_restart.records.jsonio import JsonFileError, read_json
from candle_restart.records.jsontypes import JsonObject, JsonValue

PREFIX, SUFFIX = ".sweep-", ".json"


class ManifestError(CkptError):
    """A sweep manifest that cannot be read or is not one (one line)."""


def manifest_path(run_root: Path, name: str) -> Path:
    """Where the manifest of sweep ``name`` lives."""
    return Path(run_root) / f"{PREFIX}{name}{SUFFIX}"


def _str_list(value: JsonValue) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


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
        if not isinstance(data, dict):
            raise ManifestError(source, None, f"must hold a JSON object, got {type(data).__name__}")
        name, entry, command = data.get("name"), data.get("entry"), data.get("command")
        params, varied = data.get("params", {}), data.get("varied", [])
        if name is not None and not isinstance(name, str):
            raise ManifestError(source, "name", f"must be a string, got {name!r}"[:300])
        if entry is not None and not isinstance(entry, str):
            raise ManifestError(source, "entry", f"must be a string or null, got {entry!r}"[:300])
        if command is not None and not _str_list(command):
            raise ManifestError(
                source, "command", f"must be a list of strings or null, got {command!r}"[:300]
            )
        if not isinstance(params, dict):
            raise ManifestError(source, "params", f"must be a JSON object, got {type(params).__name__}")
        if not _str_list(varied):
            raise ManifestError(source, "varied", f"must be a list of names, got {varied!r}"[:300])
        return cls(
            name,
            entry,
            [str(c) for c in command] if isinstance(command, list) else None,
            params,
            [str(v) for v in varied] if isinstance(varied, list) else [],
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


def read(path: Path) -> SweepManifest:
    """The manifest in ``path`` (see the module contract)."""
    try:
        data = read_json(path)
    except JsonFileError as exc:
        raise ManifestError(exc.where, None, exc.problem) from None
    return SweepManifest.from_json(data, str(path))


def find(run_root: Path) -> list[Path]:
    """The manifests of ``run_root``, by name."""
    return sorted(Path(run_root).glob(f"{PREFIX}*{SUFFIX}"))
