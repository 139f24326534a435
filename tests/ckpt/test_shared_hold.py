"""One hold per process of a writer lease, and drops that garbage collection runs at odd moments."""

from __future__ import annotations

from pathlib import Path

from candle_restart.runtime import lease as leases


def test_instances_share_one_hold_and_the_last_one_out_releases(tmp_path: Path) -> None:
    path = tmp_path / ".writer.lock"
    first = leases.hold_shared(path, "writer")
    second = leases.hold_shared(path, "writer")
    assert first is second
    leases.drop_shared(first)
    first.check()  # still held: one holder is left
    leases.drop_shared(second)
    assert Path(leases.os.path.abspath(path)) not in leases._shared


def test_a_drop_during_an_update_of_the_same_thread_is_deferred_not_lost(tmp_path: Path) -> None:
    """As when a callback's finalizer runs (garbage collection) inside hold_shared's update."""
    path = tmp_path / ".writer.lock"
    held = leases.hold_shared(path, "writer")
    leases.hold_shared(path, "writer")  # count 2
    key = Path(leases.os.path.abspath(path))
    with leases._update():
        joined, count = leases._shared[key]
        leases.drop_shared(held)  # the finalizer, mid read-modify-write: must not interleave
        leases._shared[key] = (joined, count)  # the write-back of the interrupted update
        assert leases._shared[key][1] == 2
    assert leases._shared[key][1] == 1  # the deferred drop ran once the update ended
    leases.drop_shared(held)
    assert key not in leases._shared
