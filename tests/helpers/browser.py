"""Headless Chromium, to check the report's pages as a browser shows them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REQUIRE_BROWSER = "CANDLE_RESTART_REQUIRE_BROWSER"


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
