"""The watchdog's decision, a pure function, as a table; the heartbeat file's reading and writing.

Real processes under the watchdog: tests/task/test_hang.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from candle_restart.records.heartbeat import Beat
from candle_restart.runtime.envvars import HEARTBEAT_ENV
from candle_restart.runtime.heartbeat import Heartbeat
from candle_restart.task.watchdog import Limits, Watch, Watcher, limit, observe, stop_wait, verdict

L = Limits(factor=3.0, grace=10.0, first=100.0)
WARM = Watch(seen=0.0, phase="step", warm=True, step_gaps=5, longest_step=2.0, commits=2, longest_commit=4.0)


@pytest.mark.parametrize(
    ("watch", "silent", "hung"),
    [
        (Watch(), 10_000.0, False),  # nothing ever beat: a command that opted out
        (Watch(seen=0.0, phase="start", warm=False), 99.0, False),  # the first step compiles: the floor
        (Watch(seen=0.0, phase="start", warm=False), 101.0, True),
        (WARM, 16.0, False),  # 3 x 2 s + 10 s
        (WARM, 16.5, True),
        (Watch(seen=0.0, phase="step", warm=False, step_gaps=5, longest_step=2.0), 99.0, False),  # first epoch
        (Watch(seen=0.0, phase="step", warm=True, step_gaps=0), 99.0, False),  # no step seen yet
        (Watch(seen=0.0, phase="step", warm=True, step_gaps=1, longest_step=40.0), 129.0, False),  # slow, steady
        (Watch(seen=0.0, phase="step", warm=True, step_gaps=1, longest_step=40.0), 131.0, True),
        (Watch(seen=0.0, phase="epoch", warm=True, step_gaps=5, longest_step=2.0), 17.0, True),
        (Watch(**{**WARM.__dict__, "phase": "commit"}), 22.0, False),  # 3 x 4 s + 10 s
        (Watch(**{**WARM.__dict__, "phase": "commit"}), 22.5, True),
        (Watch(seen=0.0, phase="commit", warm=True, step_gaps=5, longest_step=2.0), 99.0, False),  # no commit yet
        (Watch(seen=0.0, phase="commit", warm=True, step_gaps=5, longest_step=2.0), 101.0, True),
        (Watch(**{**WARM.__dict__, "phase": "idle"}), 10_000.0, False),  # fit returned
        (Watch(**{**WARM.__dict__, "phase": "stopped"}), 10_000.0, False),  # stopping on its own
    ],
)
def test_verdict(watch: Watch, silent: float, hung: bool) -> None:
    assert (verdict(watch, silent, L) is not None) is hung
    assert verdict(watch, silent, Limits(0.0, 10.0, 100.0)) is None  # factor 0: off


def test_observe_times_steps_and_commits_on_the_runners_clock_and_skips_the_first_step() -> None:
    w = observe(Watch(), 0.0, Beat("start", False))
    w = observe(w, 50.0, Beat("step", False))  # the first step (compilation) is not a step time
    assert (w.step_gaps, w.longest_step) == (0, 0.0)
    w = observe(w, 52.0, Beat("step", False))
    w = observe(w, 53.0, Beat("commit", False))
    w = observe(w, 60.0, Beat("step", False))  # a 7 s commit seen by the runner
    w = observe(w, 61.0, Beat("epoch", True))
    assert (w.step_gaps, w.longest_step, w.commits, w.longest_commit, w.warm) == (3, 2.0, 1, 7.0, True)
    w = observe(w, 62.0, Beat("step", True, commits=4, commit_seconds=9.0))  # the training's own figures
    assert (w.commits, w.longest_commit) == (4, 9.0)
    assert limit(w, L) == 3 * 2.0 + 10.0 and stop_wait(w, L) == 10.0 + 3 * 9.0


@pytest.mark.parametrize(
    ("raw", "beat"),
    [
        (b"", Beat()),  # a touched file
        (b"alive 17\n", Beat()),
        (b"[1]", Beat()),
        (b'{"phase": "commit", "warm": false, "n": 3}', Beat("commit", False, None, 3)),
        (b'{"phase": "nonsense", "commits": -1, "commit_seconds": "x"}', Beat()),
        (b'{"phase": "stopped", "cause": "timeout"}', Beat("stopped", True, "timeout")),
        (b"\xff\xfe", Beat()),
        (b"{" * 100_000, Beat()),
    ],
)
def test_any_file_content_is_a_beat(raw: bytes, beat: Beat) -> None:
    assert Beat.from_bytes(raw) == beat


def test_the_heartbeat_is_throttled_writes_phase_changes_at_once_and_counts_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "heartbeat"
    heart = Heartbeat()
    heart.beat("step")  # no variable: nothing written
    assert not path.exists()
    monkeypatch.setenv(HEARTBEAT_ENV, str(path))
    heart.beat("start")
    heart.beat("step")
    first = Beat.from_bytes(path.read_bytes())
    heart.beat("step")  # within BEAT_SECONDS: not written
    assert Beat.from_bytes(path.read_bytes()) == first and first.phase == "step"
    heart.beat("commit")
    heart.beat("step")
    after = Beat.from_bytes(path.read_bytes())
    assert (after.phase, after.commits, after.n) == ("step", 1, first.n + 2)
    heart.stopped("timeout")
    assert Beat.from_bytes(path.read_bytes()).cause == "timeout"
    watcher = Watcher(path, L)
    assert watcher.stopped_cause == "timeout"
    watcher.clear()
    assert not path.exists()
