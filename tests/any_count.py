"""Count ``Any`` in the package: the team's measure of how much of the code is untyped.

Counts NAME tokens ``Any`` outside import statements (``from typing import Any`` is not a use),
in every ``candle_restart/**/*.py``, per 1000 non-blank lines, and prints one line::

    Any: 180 in 12,400 lines (14.5 per 1000; goal <= 15)

Exits 0, or with ``--check`` exits 1 when the rate is over the goal.  ``--files`` also lists
the files with the most uses.  Uses only the standard library (``tokenize``).
"""

from __future__ import annotations

import argparse
import io
import sys
import tokenize
from pathlib import Path

GOAL = 15.0  # uses of Any per 1000 non-blank lines
PACKAGE = Path(__file__).resolve().parent.parent / "candle_restart"


def count_file(path: Path) -> tuple[int, int]:
    """(uses of ``Any`` outside import statements, non-blank lines) of one Python file."""
    uses = 0
    in_import = False  # inside an ``import ...`` or ``from ... import ...`` statement
    with tokenize.open(path) as stream:  # honours a coding cookie
        text = stream.read()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            in_import = False
        elif token.type == tokenize.NAME:
            if token.string in ("import", "from") and _starts_statement(token):
                in_import = True
            elif token.string == "Any" and not in_import:
                uses += 1
    lines = sum(1 for line in text.splitlines() if line.strip())
    return uses, lines


def _starts_statement(token: tokenize.TokenInfo) -> bool:
    """Whether ``token`` is the first token on its line (``from`` of ``yield from`` is not)."""
    return token.line[: token.start[1]].strip() == ""


def count(root: Path = PACKAGE) -> dict[Path, tuple[int, int]]:
    """``{file: (uses, lines)}`` for every Python file under ``root``."""
    return {path: count_file(path) for path in sorted(root.rglob("*.py"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help=f"exit 1 over the goal ({GOAL:g} per 1000)")
    parser.add_argument("--files", type=int, default=0, metavar="N", help="list the N files with most uses")
    parser.add_argument("root", nargs="?", type=Path, default=PACKAGE, help="the package folder")
    args = parser.parse_args(argv)
    counts = count(args.root)
    uses = sum(u for u, _ in counts.values())
    lines = sum(n for _, n in counts.values())
    rate = 1000 * uses / lines if lines else 0.0
    print(f"Any: {uses} in {lines:,} lines ({rate:.1f} per 1000; goal <= {GOAL:g})")
    for path, (u, n) in sorted(counts.items(), key=lambda kv: -kv[1][0])[: args.files]:
        print(f"  {u:4d} {path.relative_to(args.root.parent)} ({n} lines)")
    return 1 if args.check and rate > GOAL else 0


if __name__ == "__main__":
    sys.exit(main())
