"""``python -m candle_restart.task TASK_DIR``: run one task (see `candle_restart.task.runner`)."""

from __future__ import annotations

import sys

from candle_restart.runtime.preempt import EXIT_BAD_INPUT, EXIT_IO_ERROR
from candle_restart.task.runner import run_task


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m candle_restart.task TASK_DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return run_task(args[0])
    except OSError as exc:  # an I/O error recording the attempt (a full disk): one line, exit 1
        print(f"candle-restart run: {exc.filename or args[0]}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_IO_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
