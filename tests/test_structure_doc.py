"""docs/structure.md against the code: its layers are the import contracts' layers (``pyproject.toml``,
checked by ``lint-imports`` in ``make lint``), and its table has a row for every package."""

from __future__ import annotations

import re
import sys

from tests.helpers import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: import-linter's own TOML reader
    import tomli as tomllib

DOC = ROOT / "docs" / "structure.md"


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [" | ".join(part.strip() for part in layer.split("|")) for layer in layers]


def _doc_layers() -> list[str]:
    section = DOC.read_text().split("\n## Layers\n", 1)[1]
    block = section.split("```\n", 2)[1]
    return [re.split(r"\s{2,}", line.strip())[0] for line in block.splitlines() if line.strip()]


def test_the_layers_in_the_doc_are_the_contracts() -> None:
    assert _doc_layers() == _contract_layers()


def test_every_package_has_a_row_in_the_doc() -> None:
    text = DOC.read_text()
    packages = sorted(p.parent.name for p in (ROOT / "candle_restart").glob("*/__init__.py"))
    missing = [name for name in packages if f"| `candle_restart/{name}/` |" not in text]
    assert not missing, f"docs/structure.md has no row for: {missing}"
