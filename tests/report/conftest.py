"""Helpers for report tests: a run root with tasks in every kind of state (real runs), and headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from candle_restart.task import TaskDir, create_task, run_task
from tests.coordinator.conftest import TOY
from tests.task.conftest import ROOT, run_runner

TRAINER = "tests.report.trainer:run"
ARTIFACTS = ROOT / "test-artifacts" / "report"
REQUIRE_BROWSER = "CANDLE_RESTART_REQUIRE_BROWSER"
INJECTED = '<b id="injected">x</b>'  # a training error's message that must reach the page as text


@pytest.fixture(autouse=True)
def runners_can_import_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runners started as processes import the trainer and the toy from the tests package."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def _task(root: Path, name: str, entry: str = TRAINER, **params: Any) -> TaskDir:
    params.setdefault("epochs", 6)
    return create_task(root, params, entry=entry, sweep=name)


def build_run_root(root: Path) -> dict[str, TaskDir]:
    """Ten tasks, named by what happened to them (the first part of each task id)."""
    t = {
        "completed": _task(root, "completed"),
        # ckpt_save_interval 2 and a metric that worsens at epoch 3: epoch 3 is not saved, so the
        # restart after it goes back to epoch 2 and trains epoch 3 again.
        "resumed": _task(
            root, "resumed", curve=[0.9, 0.7, 0.75, 0.6, 0.62, 0.5], ckpt_save_interval=2, preempt_at=[3]
        ),
        "midepoch": _task(root, "midepoch", epochs=4, stop_inside=[3, 5]),
        "preempted": _task(root, "preempted", preempt_at=[2]),
        "failed": _task(root, "failed", fail_at=3, fail_message=f"diverged {INJECTED}"),
        "corrupt": _task(root, "corrupt", entry=TOY, preempt_at=1, epochs=3),
        "toyresumed": _task(root, "toyresumed", entry=TOY, preempt_at=2, epochs=4),
        "new": _task(root, "new"),
        "badinput": create_task(root, {"epochs": 1, "ckpt_keep_limit": 0}, entry=TRAINER, sweep="badinput"),
        "tornstate": _task(root, "tornstate", preempt_at=[2]),
    }
    assert run_task(t["completed"].path) == 0
    assert [run_task(t["resumed"].path), run_task(t["resumed"].path)] == [75, 0]
    assert [run_task(t["midepoch"].path), run_task(t["midepoch"].path)] == [75, 0]
    assert run_task(t["preempted"].path) == 75
    assert run_task(t["failed"].path) == 1
    assert run_task(t["corrupt"].path) == 75
    for info in (t["corrupt"].ckpts / "epochs").glob("*/ckpt-info.json"):
        info.write_text("{torn")  # as the coordinator's tests corrupt a checkpoint
    # The toy keeps no ckpt.log: its restart is found from the checkpoints' writers, which are
    # different processes only when each attempt is one, as on a cluster.
    assert [run_runner(t["toyresumed"].path)[0], run_runner(t["toyresumed"].path)[0]] == [75, 0]
    assert run_task(t["badinput"].path) == 2
    assert run_task(t["tornstate"].path) == 75
    text = t["tornstate"].state_file.read_text()
    t["tornstate"].state_file.write_text(text[: len(text) // 2])  # a torn write
    return t


def snapshot(root: Path, skip: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every file and link under ``root`` (except under ``skip``): kind, mtime, content or target."""
    found: dict[str, tuple[str, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in [*filenames, *dirnames]:
            path = Path(dirpath, name)
            st = path.lstat()
            if path.is_symlink():
                found[str(path)] = ("link", st.st_mtime_ns, os.readlink(path).encode())
            elif path.is_file():
                found[str(path)] = ("file", st.st_mtime_ns, path.read_bytes())
            else:
                found[str(path)] = ("dir", st.st_mtime_ns, b"")
    return found


def chromium() -> str:
    """The browser to check pages with; skips (or fails, under CANDLE_RESTART_REQUIRE_BROWSER) without one."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get(REQUIRE_BROWSER):
        pytest.fail(f"{message}, and {REQUIRE_BROWSER} is set")
    pytest.skip(f"{message}; set {REQUIRE_BROWSER}=1 to make this a failure")


def headless(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``url`` (a fresh profile; no network; console messages on stderr)."""
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
