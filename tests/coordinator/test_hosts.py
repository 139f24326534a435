"""The bad-host rule (`candle_restart.coordinator.hosts`), as tables: ends in, rows out."""

from __future__ import annotations

import pytest

from candle_restart.coordinator.hosts import AttemptEnd, Clear, bad_cause, excluded_hosts, host_rows


def end(host: str, task: str = "s-000000000001", cause: str | None = None, **kw: object) -> AttemptEnd:
    return AttemptEnd(host, task, kw.pop("sweep", "s"), cause, **kw)  # type: ignore[arg-type]


# (case, the end judged, every end (evidence), the cause it is bad for, or None)
A, B = "s-00000000000a", "s-00000000000b"
BAD_CAUSE_TABLE = [
    ("a hang is the host's", end("h1", A, "hang"), [], "hang"),
    ("a lost node is the host's", end("h1", A, "node_fail"), [], "node_fail"),
    ("a preemption is nobody's", end("h1", A, "preempted"), [], None),
    ("a walltime is nobody's", end("h1", A, "timeout"), [], None),
    ("an oom is the task's", end("h1", A, "oom"), [], None),
    ("a completed attempt is fine", end("h1", A, None), [], None),
    ("an error on the only host says nothing", end("h1", A, "error", reason="boom"), [], None),
    (
        "an error the task did not repeat on another host is the host's",
        end("h1", A, "error", reason="boom"),
        [end("h2", A, None)],
        "error",
    ),
    (
        "an error the task repeated on another host is the task's",
        end("h1", A, "error", reason="boom"),
        [end("h2", A, "error", reason="boom")],
        None,
    ),
    (
        "another task's success elsewhere is no evidence",
        end("h1", A, "error", reason="boom"),
        [end("h2", B, None)],
        None,
    ),
    (
        "a different error elsewhere does not reproduce this one",
        end("h1", A, "error", reason="boom"),
        [end("h2", A, "error", reason="other")],
        "error",
    ),
    (
        "epochs over twice the peers' median are slow",
        end("h1", A, None, epoch_seconds=2.1),
        [end("h2", B, None, epoch_seconds=1.0), end("h3", B, None, epoch_seconds=1.0)],
        "slow",
    ),
    (
        "epochs at twice the peers' median are not",
        end("h1", A, None, epoch_seconds=2.0),
        [end("h2", B, None, epoch_seconds=1.0), end("h3", B, None, epoch_seconds=1.0)],
        None,
    ),
    (
        "one peer is not enough to call an attempt slow",
        end("h1", A, None, epoch_seconds=9.0),
        [end("h2", B, None, epoch_seconds=1.0)],
        None,
    ),
    (
        "peers of another sweep do not count",
        end("h1", A, None, epoch_seconds=9.0),
        [end("h2", "t-000000000001", None, sweep="t", epoch_seconds=1.0)] * 2,
        None,
    ),
    (
        "the same host's other attempts are not its peers",
        end("h1", A, None, epoch_seconds=9.0),
        [end("h1", B, None, epoch_seconds=1.0)] * 3,
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "judged", "others", "expected"), BAD_CAUSE_TABLE, ids=[c[0] for c in BAD_CAUSE_TABLE]
)
def test_bad_cause(case: str, judged: AttemptEnd, others: list[AttemptEnd], expected: str | None) -> None:
    from candle_restart.coordinator.hosts import _median_peers

    ends = [judged, *others]
    assert bad_cause(judged, ends, _median_peers(ends)) == expected, case


NODES8 = [f"n{i}" for i in range(8)]
# (case, ends, bad_ends, share, nodes, clears, {host: (attempts, bad total, excluded)}, text in the excluded/first why)
HOST_TABLE = [
    (
        "two hangs exclude a node",
        [end("n1", A, "hang"), end("n1", B, "hang"), end("n2", A, None)],
        2,
        0.25,
        NODES8,
        [],
        {"n1": (2, 2, True), "n2": (1, 0, False)},
        "excluded (1 of at most 2: 0.25 of 8 nodes)",
    ),
    (
        "one bad end is under the threshold",
        [end("n1", A, "hang"), end("n2", A, None)],
        2,
        0.25,
        NODES8,
        [],
        {"n1": (1, 1, False), "n2": (1, 0, False)},
        "1 bad end (hang 1), fewer than 2",
    ),
    (
        "the share caps how many: worst first",
        [end("n1", A, "hang")] * 3 + [end("n2", A, "node_fail")] * 2 + [end("n3", A, "hang")] * 2,
        2,
        0.25,
        ["n1", "n2", "n3", "n4"],
        [],
        {"n1": (3, 3, True), "n2": (2, 2, False), "n3": (2, 2, False)},
        "excluded (1 of at most 1: 0.25 of 4 nodes)",
    ),
    (
        "a share below one node excludes none",
        [end("n1", A, "hang")] * 2,
        2,
        0.25,
        ["n1", "n2", "n3"],
        [],
        {"n1": (2, 2, False)},
        "not excluded: at most 0 of 3 nodes (max_excluded_share 0.25)",
    ),
    (
        "share 1 may exclude every node",
        [end("n1", A, "hang")] * 2,
        2,
        1.0,
        ["n1"],
        [],
        {"n1": (2, 2, True)},
        "excluded (1 of at most 1: 1 of 1 nodes)",
    ),
    (
        "a host that is not a node of the partition is not excluded",
        [end("login1", A, "hang")] * 2,
        2,
        1.0,
        ["n1"],
        [],
        {"login1": (2, 2, False)},
        "not one of the partition's 1 nodes",
    ),
    (
        "an executor that cannot exclude excludes nothing",
        [end("n1", A, "hang")] * 2,
        2,
        0.25,
        None,
        [],
        {"n1": (2, 2, False)},
        "this executor cannot exclude hosts",
    ),
    (
        "host_bad_ends 0 turns exclusion off",
        [end("n1", A, "hang")] * 5,
        0,
        1.0,
        NODES8,
        [],
        {"n1": (5, 5, False)},
        "host exclusion is off",
    ),
    (
        "a clear of every host forgets the ends before it",
        [end("n1", A, "hang", time=10.0), end("n1", B, "hang", time=20.0), end("n1", A, None, time=40.0)],
        2,
        1.0,
        NODES8,
        [Clear(30.0)],
        {"n1": (1, 0, False)},
        "counted since a clear",
    ),
    (
        "a clear of one host leaves the others",
        [end("n1", A, "hang", time=10.0)] * 2 + [end("n2", A, "hang", time=10.0)] * 2,
        2,
        1.0,
        NODES8,
        [Clear(30.0, frozenset({"n1"}))],
        {"n2": (2, 2, True)},
        "excluded",
    ),
    (
        "ends after a clear count again",
        [end("n1", A, "hang", time=10.0), end("n1", A, "hang", time=40.0), end("n1", B, "hang", time=50.0)],
        2,
        1.0,
        NODES8,
        [Clear(30.0)],
        {"n1": (2, 2, True)},
        "counted since a clear",
    ),
    (
        "an end without a time is forgotten by a clear",
        [end("n1", A, "hang")] * 2,
        2,
        1.0,
        NODES8,
        [Clear(30.0)],
        {},
        "",
    ),
]


@pytest.mark.parametrize(
    ("case", "ends", "bad_ends", "share", "nodes", "clears", "expected", "why"),
    HOST_TABLE,
    ids=[c[0] for c in HOST_TABLE],
)
def test_host_rows(
    case: str,
    ends: list[AttemptEnd],
    bad_ends: int,
    share: float,
    nodes: list[str] | None,
    clears: list[Clear],
    expected: dict[str, tuple[int, int, bool]],
    why: str,
) -> None:
    rows = host_rows(ends, bad_ends=bad_ends, share=share, nodes=nodes, clears=clears)
    assert {r.host: (r.attempts, r.bad_total, r.excluded) for r in rows if r.attempts} == expected, case
    if rows:
        assert why in rows[0].why, (case, rows[0].why)
    assert excluded_hosts(rows) == sorted(h for h, (_, _, out) in expected.items() if out)


def test_rows_come_worst_first_with_bad_ends_by_cause() -> None:
    ends = [end("n2", A, "hang"), end("n1", A, "node_fail"), end("n1", A, "hang"), end("n3", A, None)]
    rows = host_rows(ends, bad_ends=2, share=0.5, nodes=["n1", "n2", "n3", "n4"])
    assert [r.host for r in rows] == ["n1", "n2", "n3"]
    assert dict(rows[0].bad) == {"hang": 1, "node_fail": 1}
    assert rows[0].why.startswith("2 bad ends (hang 1, node_fail 1), at least 2; excluded")
