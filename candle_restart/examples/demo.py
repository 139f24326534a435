"""The demo behind ``make demo``: train, get killed with SIGKILL mid-run, resume, finish.

Each step runs the CANDLE-style example benchmark in a fresh process (as a
preempted job would be), then the demo verifies that the resumed run picked
up from the last committed checkpoint and ended at the final epoch.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from candle_restart.ckpt import CkptLayout, find_restart


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "candle_restart.examples.regression", *args]
    print("$ " + " ".join(cmd[2:]), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    for line in proc.stdout.splitlines():
        print("    " + line)
    return proc


def demo(workdir: Path, epochs: int = 6, kill_after: int = 3) -> int:
    """Run the demo in ``workdir`` (wiped first); return 0 when every check passed."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    common = ["--epochs", str(epochs), "--output_dir", "run", "--ckpt_checksum", "True"]

    print(f"1. train {epochs} epochs; the process kills itself with SIGKILL after epoch {kill_after}")
    first = _run([*common, "--kill_after_epoch", str(kill_after)], workdir)
    killed = first.returncode == -signal.SIGKILL
    print(f"   exit: {'killed by SIGKILL' if killed else first.returncode}")

    layout = CkptLayout.at(workdir / "run" / "ckpts")
    found = find_restart(layout, check_checksums=True, log=lambda msg: None)
    print(f"   last committed checkpoint: {found.path.relative_to(workdir) if found else None}")

    print("2. run the same command again: it restarts from ckpts/last")
    second = _run([*common, "--ckpt_restart_mode", "required"], workdir)
    resumed = f"restarting from epoch: {kill_after}" in second.stdout
    final = find_restart(layout, check_checksums=True, log=lambda msg: None)
    finished = second.returncode == 0 and final is not None and final.info.epoch == epochs

    checks = {
        "first run was killed": killed,
        f"checkpoint of epoch {kill_after} survived the kill": found is not None
        and found.epoch == kill_after,
        f"second run printed 'restarting from epoch: {kill_after}'": resumed,
        f"second run finished epoch {epochs} and marked it complete": finished
        and bool(final and final.info.complete),
    }
    print("3. checks")
    for name, ok in checks.items():
        print(f"   [{'ok' if ok else 'FAILED'}] {name}")
    print(f"   checkpoints and ckpt.log are in {layout.root}")
    return 0 if all(checks.values()) else 1
