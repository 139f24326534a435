"""Why attempts ended: per-cause budgets, the no-progress breaker, and the causes real processes give."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from candle_restart.coordinator import LocalBackend, Policy, resume, scan
from candle_restart.coordinator.backend import Backend
from candle_restart.coordinator.causes import UNKNOWN, Ledger, cause_of_exit, cause_of_scheduler_state
from candle_restart.coordinator.policy import decide
from candle_restart.coordinator.states import TaskStatus
from candle_restart.records.journal import JournalEvent
from candle_restart.task import TaskDir
from tests.helpers import ROOT, runner_env, toy_task

BACKENDS: dict[str, Backend] = {"local": LocalBackend()}


def _exit(fields: dict[str, str]) -> JournalEvent:
    return JournalEvent.from_json({"event": "exit", **fields}, "test")


def test_causes_of_exits_and_of_scheduler_states() -> None:
    assert cause_of_exit(_exit({"status": "preempted"})) == "preempted"
    assert cause_of_exit(_exit({"status": "preempted", "cause": "timeout"})) == "timeout"
    assert cause_of_exit(_exit({"status": "failed"})) == "error"
    assert cause_of_exit(_exit({"status": "bad_input"})) == "bad_input"
    assert cause_of_exit(_exit({"status": "failed", "cause": "nonsense"})) == "error"  # unknown: by status
    assert cause_of_exit(_exit({"status": "completed"})) is None
    table = {
        "TIMEOUT": "timeout",
        "PREEMPTED": "preempted",
        "NODE_FAIL": "node_fail",
        "OUT_OF_MEMORY": "oom",
        "CANCELLED by 0": "cancelled",
        "CANCELLED+": "cancelled",
        "COMPLETED": None,
        None: None,
    }
    assert {k: cause_of_scheduler_state(k) for k in table} == table


def test_the_ledger_counts_causes_and_runs_without_progress() -> None:
    ledger = Ledger()
    ledger.end("preempted", None)  # before the first checkpoint: no progress
    ledger.end("node_fail", None)
    assert ledger.stalled == 2
    ledger.end("timeout", "3:0:t1")  # a checkpoint: progress
    assert ledger.stalled == 0
    ledger.end("preempted", "3:0:t1")  # the same checkpoint again: none
    ledger.end("oom", "3:0:t1")
    assert ledger.stalled == 2 and ledger.last_cause == "oom"
    ledger.reclassify_last("node_fail")
    assert dict(ledger.counts) == {"preempted": 2, "node_fail": 2, "timeout": 1}
    ledger.end("preempted", UNKNOWN)  # an end from an older runner: benefit of the doubt
    assert ledger.stalled == 0
    ledger.reset()
    assert not ledger.counts and ledger.stalled == 0


def _preempted(cause: str, count: int, stalled: int = 0) -> TaskStatus:
    return TaskStatus(
        "t", "preempted", "stopped", cause=cause, causes={cause: count}, stalled=stalled, preemptions=count
    )


@pytest.mark.parametrize(
    "cause, count, action",
    [
        ("preempted", 49, "submit"),
        ("preempted", 50, "give_up"),
        ("timeout", 9, "submit"),
        ("timeout", 10, "give_up"),
        ("node_fail", 19, "submit"),
        ("node_fail", 20, "give_up"),
        ("oom", 1, "submit"),
        ("oom", 2, "give_up"),
    ],
)
def test_each_cause_has_its_own_budget(cause: str, count: int, action: str) -> None:
    decision = decide(_preempted(cause, count), Policy())
    assert decision.action == action
    if action == "give_up":
        assert f"{count} times (cap {count}" in decision.reason


def test_no_progress_in_n_attempts_gives_up_whatever_the_cause() -> None:
    assert decide(_preempted("preempted", 2, stalled=2), Policy()).action == "submit"
    stuck = decide(_preempted("preempted", 3, stalled=3), Policy())
    assert stuck.action == "give_up" and stuck.reason.startswith("no progress in 3 attempts")
    assert decide(_preempted("preempted", 3, stalled=3), Policy(no_progress_attempts=0)).action == "submit"


@pytest.mark.parametrize("how, cause", [("die_at_start", "node_fail"), ("stop_at_start", "preempted")])
def test_a_task_that_ends_before_its_first_checkpoint_is_given_up_after_three_tries(
    tmp_path: Path, how: str, cause: str
) -> None:
    """Real runners, killed (SIGKILL) or stopped (exit 75) before any checkpoint, every time."""
    root = tmp_path / "run"
    toy_task(root, "dies", **{how: True})
    backend = LocalBackend()
    policy = Policy(backoff_seconds=0)
    seen = []
    for _ in range(10):  # bounded: the breaker must trip long before this
        [outcome] = resume(root, backend, policy)
        seen.append(outcome.decision.action)
        if outcome.decision.action == "give_up":
            break
        backend.wait_all()
    # A pass that finds a lost runner journals it, then decides: the 4th pass gives up.
    assert seen == ["submit", "submit", "submit", "give_up"], seen
    [status] = scan(root, BACKENDS)
    assert status.cause == cause and status.causes == {cause: 3} and status.stalled == 3
    assert outcome.decision.reason.startswith("no progress in 3 attempts")
    ends = [e for e in TaskDir(root / status.task_id).events() if e.kind in ("runner_lost", "exit")]
    assert len(ends) == 3 and all(e.ckpt is None for e in ends)


def _memory_cgroup(tmp_name: str, limit: int) -> Path:
    """A child of this process's memory cgroup (v1 or v2) capped at ``limit`` bytes, or a skip."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    v1 = [ln.split(":", 2)[2] for ln in lines if ln.split(":")[1] == "memory"]
    if v1:
        parent, limit_file = Path("/sys/fs/cgroup/memory" + v1[0]), "memory.limit_in_bytes"
    else:
        v2 = [ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")]
        parent, limit_file = Path("/sys/fs/cgroup" + (v2[0] if v2 else "/")), "memory.max"
    group = parent / tmp_name
    try:
        group.mkdir()
        (group / limit_file).write_text(str(limit))
        if (group / "memory.memsw.limit_in_bytes").exists():
            (group / "memory.memsw.limit_in_bytes").write_text(str(limit))  # no escape into swap
    except OSError as exc:
        if group.exists():
            group.rmdir()
        pytest.skip(f"cannot make a memory cgroup here ({exc}); the OOM cause is tested where root can")
    return group


def test_a_runner_killed_for_memory_is_recorded_as_oom(tmp_path: Path) -> None:
    """A real kernel OOM kill: the runner runs in a cgroup capped at 96 MB and touches 256 MB."""
    if subprocess.run(["dmesg"], capture_output=True).returncode != 0:
        pytest.skip("the kernel log cannot be read here (dmesg), so no OOM record can be found")
    root = tmp_path / "run"
    task = toy_task(root, "hog", hog_mb=256)
    group = _memory_cgroup(f"candle-restart-test-{os.getpid()}", 96 << 20)
    try:
        procs = group / "cgroup.procs"
        proc = subprocess.run(
            [sys.executable, "-m", "candle_restart.task", str(task.path)],
            env=runner_env(),
            cwd=ROOT,
            preexec_fn=lambda: procs.write_text("0"),
            capture_output=True,
            timeout=120,
        )
    finally:
        group.rmdir()
    assert proc.returncode == -9, proc.stderr[-2000:]
    [status] = scan(root, BACKENDS)
    assert status.state == "preempted" and status.extra.lost_cause == "oom"
    [outcome] = resume(root, LocalBackend(), Policy(max_oom=1))  # journals the loss, then decides
    assert outcome.decision.action == "give_up"
    assert "killed for memory 1 times (cap 1, max_oom)" in outcome.decision.reason
    [lost] = [e for e in task.events() if e.kind == "runner_lost"]
    assert lost.cause == "oom"
    [status] = scan(root, BACKENDS)
    assert status.cause == "oom" and status.causes == {"oom": 1}
    assert decide(status, Policy(max_oom=2)).action == "submit"


def test_a_sweep_sets_each_budget_and_resume_flags_override_it(tmp_path: Path) -> None:
    from candle_restart.cli import build_parser
    from candle_restart.sweep import SweepError, parse_sweep
    from candle_restart.sweep.run import policy_of

    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nentry: tests.coordinator.toy:run\nparams: {epochs: 1}\n"
        "restart: {max_timeouts: 4, max_node_failures: 7, max_oom: 0, no_progress_attempts: 5}\n"
    )
    policy = policy_of(parse_sweep(path))
    assert (policy.max_timeouts, policy.max_node_failures, policy.max_oom) == (4, 7, 0)
    assert policy.no_progress_attempts == 5 and policy.max_preemptions == Policy().max_preemptions
    path.write_text(path.read_text().replace("max_oom: 0", "max_oom: -1"))
    with pytest.raises(SweepError, match=r"restart\.max_oom: must be an integer >= 0"):
        parse_sweep(path)
    args = build_parser().parse_args(["resume", "r", "--max-oom", "3", "--no-progress-attempts", "0"])
    assert (args.max_oom, args.no_progress_attempts, args.max_timeouts) == (3, 0, None)


def test_a_journal_with_hostile_causes_counts_them_as_lost_nodes(tmp_path: Path) -> None:
    task = toy_task(tmp_path / "run", "t")
    for cause in ("<script>oom", "OOM" * 5000, None):
        task.append_journal({"event": "runner_lost", "reason": "x", "cause": cause, "ckpt": None})
    [status] = scan(tmp_path / "run", BACKENDS)
    assert status.causes == {"node_fail": 3} and status.stalled == 3
