"""The test tiers' rule (``tests/helpers/tiering.py``) on small test files, and its guard's record."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import tiering


def _tiers(pytester: pytest.Pytester, source: str) -> dict[str, str]:
    """The tier of each test of a test file made of ``source`` (collected here, never run)."""
    items = pytester.getitems(textwrap.dedent(source))
    return {item.name: tiering.tier_of(item).name for item in items if isinstance(item, pytest.Function)}


def test_each_test_of_a_file_gets_the_tier_of_what_it_uses(pytester: pytest.Pytester) -> None:
    found = _tiers(
        pytester,
        """
        import os, subprocess, sys
        from tests.helpers import cli, toy_task

        PROGRAM = "candle_restart.examples.regression"

        def _helper():
            return subprocess.run(["true"])

        def test_plain(tmp_path):
            assert toy_task(tmp_path, "x").path.is_dir()

        def test_through_a_helper_of_the_module():
            _helper()

        def test_through_a_shared_helper():
            cli("status", ".")

        def test_forks():
            if os.fork() == 0:
                os._exit(0)

        def test_trains_in_a_child():
            subprocess.run([sys.executable, "-m", PROGRAM])

        def test_mounts_the_fault_filesystem(faultfs):
            pass

        def test_needs_the_slurm_cluster(slurm_conf):
            pass
        """,
    )
    assert found == {
        "test_plain": "unit",
        "test_through_a_helper_of_the_module": "process",
        "test_through_a_shared_helper": "process",
        "test_forks": "process",
        "test_trains_in_a_child": "tf",
        "test_mounts_the_fault_filesystem": "cluster",
        "test_needs_the_slurm_cluster": "cluster",
    }


def test_xdist_groups_follow_what_a_test_waits_on_and_shares(pytester: pytest.Pytester) -> None:
    items = pytester.getitems(
        textwrap.dedent(
            """
            import subprocess, sys
            import pytest
            from tests.faultfs.host import host_command
            from tests.helpers import headless

            @pytest.fixture(scope="module")
            def trained():
                subprocess.run([sys.executable, "-m", "candle_restart.examples.regression"])

            def test_trains_in_a_child():
                subprocess.run([sys.executable, "-m", "candle_restart.examples.regression"])

            def test_shares_a_module_training(trained):
                subprocess.run([sys.executable, "-m", "candle_restart.examples.regression"])

            def test_shares_a_reference(references):
                subprocess.run([sys.executable, "-m", "candle_restart.examples.regression"])

            def test_slurm(slurm_conf, faultfs):
                pass

            def test_mount(faultfs):
                pass

            def test_other_host():
                host_command("node-b", ["true"])

            def test_browser(tmp_path):
                headless("about:blank", tmp_path)

            def test_plain():
                pass
            """
        )
    )
    found = {}
    for item in items:
        assert isinstance(item, pytest.Function)
        found[item.name] = tiering.xdist_group(item, tiering.tier_of(item))
    file = items[0].nodeid.split("::")[0]
    assert found == {
        "test_trains_in_a_child": None,
        "test_shares_a_module_training": file,  # the module's training once, on one worker
        "test_shares_a_reference": "references",
        "test_slurm": "slurm",
        "test_mount": "fuse",
        "test_other_host": "fuse",
        "test_browser": None,
        "test_plain": None,
    }


def test_a_task_of_a_command_is_a_process_one_of_an_entry_is_not(pytester: pytest.Pytester) -> None:
    found = _tiers(
        pytester,
        """
        from candle_restart.task import create_task, run_task

        def test_entry(tmp_path):
            run_task(create_task(tmp_path, {"epochs": 1}, entry="tests.coordinator.toy:run").path)

        def test_command(tmp_path):
            run_task(create_task(tmp_path, {"epochs": 1}, command=["true"]).path)
        """,
    )
    assert found == {"test_entry": "unit", "test_command": "process"}


def test_a_file_importing_a_framework_is_tf_without_being_imported(tmp_path: Path) -> None:
    """Read from the source: TensorFlow is not imported to find out."""
    direct = tmp_path / "test_direct.py"
    direct.write_text("import keras\n")
    through = tmp_path / "test_through.py"
    through.write_text("def test_x():\n    from candle_restart.keras import CandleCkptKeras\n")
    neither = tmp_path / "test_neither.py"
    neither.write_text("from candle_restart.ckpt import CandleCkpt\nimport numpy\n")
    assert tiering.framework_chain(direct) == ["keras"]
    chain = tiering.framework_chain(through)
    assert (
        chain is not None
        and chain[0] == "candle_restart.keras"
        and chain[-1].split(".")[0] in ("keras", "tensorflow")
    )
    assert tiering.framework_chain(neither) is None
    assert not tiering.file_may_hold(direct, "unit or process")
    assert tiering.file_may_hold(direct, "tf") and tiering.file_may_hold(direct, "not unit")
    assert tiering.file_may_hold(neither, "unit")


def test_the_guard_records_the_processes_a_test_starts() -> None:
    tiering.GUARD.started = []
    try:
        subprocess.run(["true"], check=True)
    finally:
        started, tiering.GUARD.started = tiering.GUARD.started, None
    assert started == ["true"]


def test_children_of_the_fast_tiers_cannot_import_a_framework(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tiering.GUARDED, "process")
    proc = subprocess.run(
        [sys.executable, "-c", "__import__('keras')"],
        env={"PYTHONPATH": tiering.child_pythonpath(), "PATH": "/usr/bin:/bin", tiering.GUARDED: "process"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "keras imported in a child of a process-tier test" in proc.stderr


GROUPED = '''
import os, pytest

@pytest.mark.parametrize("i", range(6))
def test_in_group(i, worker_id):
    with open(os.path.join(os.environ["WORKERS_SEEN"], f"{worker_id}-{i}"), "w"):
        pass
'''

JOINING = '''
import pytest
from tests.helpers import tiering

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):  # what tests/conftest.py does with tiering.xdist_group's
    for item in items:
        item.add_marker(pytest.mark.xdist_group("g"))
        if getattr(item.config.option, "loadgroup", False):
            tiering.join_group(item, "g")
'''


def test_the_tests_of_one_xdist_group_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "conftest.py").write_text(JOINING)
    seen = tmp_path / "seen"
    seen.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": tiering.child_pythonpath(), "WORKERS_SEEN": str(seen)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = sorted(p.name for p in seen.iterdir())
    assert len(ran) == 6 and len({name.split("-")[0] for name in ran}) == 1, ran
