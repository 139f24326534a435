"""The ``candle-restart`` command.

Subcommands:

* ``demo [--dir DIR]``: train a small example, kill it, resume it (``make demo``).
* ``run TASK_DIR``: run one task; exit 0 completed, 75 preempted (resume me), 1 failed, 2 bad input.
* ``ckpt CKPT_DIR [--checksums]``: list a checkpoint directory's checkpoints, verify each,
  and say which one a restart would load.

Bad input exits 2 with one line naming the file, key and problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from candle_restart.ckpt import CkptError, CkptLayout, find_restart, verify_checkpoint


def cmd_ckpt(args: argparse.Namespace) -> int:
    layout = CkptLayout.at(args.ckpt_dir)
    if not layout.root.is_dir():
        print(f"{layout.root}: not a directory", file=sys.stderr)
        return 2
    last = layout.linked_epoch(layout.last)
    best = layout.linked_epoch(layout.best)
    for epoch in layout.list_epochs():
        marks = ",".join(n for n, e in (("last", last), ("best", best)) if e == epoch)
        try:
            info = verify_checkpoint(layout.epoch_dir(epoch), args.checksums)
            status = f"ok   best_metric_last={info.get('best_metric_last')} complete={info.get('complete')}"
        except CkptError as exc:
            status = f"BAD  {exc}"
        print(f"{epoch:>5} {marks:<9} {status}")
    found = find_restart(layout, args.checksums, lambda msg: print("  " + msg))
    print(f"restart would load: {found.path if found else 'nothing (fresh start)'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from candle_restart.examples.demo import demo

    return demo(Path(args.dir).resolve())


def cmd_run(args: argparse.Namespace) -> int:
    from candle_restart.task import run_task

    return run_task(args.task_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="candle-restart", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small example, kill it, resume it")
    p.add_argument("--dir", default="demo-run", help="work directory (wiped first)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("run", help="run one task directory (exit 0/75/1/2)")
    p.add_argument("task_dir")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("ckpt", help="list and verify the checkpoints of a ckpt_directory")
    p.add_argument("ckpt_dir")
    p.add_argument("--checksums", action="store_true", help="also verify CRC-32 checksums")
    p.set_defaults(func=cmd_ckpt)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CkptError as exc:
        print(f"candle-restart: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
