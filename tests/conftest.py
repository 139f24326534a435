"""Fixtures shared by every test directory: the fault filesystem, the second host, and runners that
import the tests package; the test tiers (``tests/helpers/tiering.py``) and the hygiene check
(``tests/helpers/hygiene.py``). Shared helper functions are in ``tests/helpers/``; a directory's own
``conftest.py`` holds only fixtures local to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.helpers")  # their asserts explain themselves, as in a test

from tests.helpers import tiering  # noqa: E402
from tests.helpers.references import References  # noqa: E402

pytest_plugins = ["tests.faultfs.fixtures", "tests.helpers.hygiene", "pytester"]
TIER = pytest.StashKey[tiering.Tier]()


@pytest.fixture
def runners_can_import_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runners started as processes (the local backend's, inheriting the environment) import the
    toy entry and the trainers from the tests package: put the repository on ``PYTHONPATH``.

    Autouse in the directories whose every test needs it (their ``conftest.py``)."""
    monkeypatch.setenv("PYTHONPATH", tiering.child_pythonpath())


@pytest.fixture(scope="session")
def references(tmp_path_factory: pytest.TempPathFactory) -> References:
    """The session's uninterrupted reference trainings, each run once (``tests/helpers/references.py``)."""
    return References(tmp_path_factory.mktemp("references"))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A test file that imports a framework is not even imported when ``-m`` selects no tier of its."""
    is_test = collection_path.name.startswith("test_") and collection_path.suffix == ".py"
    if is_test and not tiering.file_may_hold(collection_path, config.option.markexpr):
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's tier marker (and ``slow`` for tf and cluster) by the rule of ``tiering``."""
    for item in items:
        if not isinstance(item, pytest.Function):
            raise pytest.UsageError(f"{item.nodeid}: not a test function; tiering.tier_of cannot place it")
        if item.get_closest_marker("slow") is not None:
            item.warn(pytest.PytestWarning("`slow` is set by rule (tf and cluster tiers): remove this mark"))
        tier = tiering.tier_of(item)
        item.stash[TIER] = tier
        item.add_marker(tier.name)
        if tier.name not in tiering.FAST:
            item.add_marker("slow")
        # Under xdist (--dist loadgroup): tiering.xdist_group says which tests share a worker.
        group = tiering.xdist_group(item, tier)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            if getattr(item.config.option, "loadgroup", False):  # an xdist worker of --dist loadgroup
                tiering.join_group(item, group)
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(tiering.TIMEOUTS[tier.name]))  # 0: none


@pytest.fixture(autouse=True)
def _tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fails a unit test that started a process, and a unit or process test that imported a framework."""
    tier = request.node.stash.get(TIER, None)
    if tier is None or tier.name not in tiering.FAST:
        yield
        return
    monkeypatch.setenv(tiering.GUARDED, tier.name)
    frameworks, tiering.GUARD.started = tiering.loaded_frameworks(), []
    try:
        yield
    finally:
        started, tiering.GUARD.started = tiering.GUARD.started, None
    problems = []
    if tier.name == "unit" and started:
        problems.append(f"started processes ({', '.join(started[:3])})")
    new = sorted(set(tiering.loaded_frameworks()) - set(frameworks))
    if new:
        problems.append(f"imported {', '.join(new)}")
    if problems:
        pytest.fail(
            f"a {tier.name}-tier test ({tier.why}) {' and '.join(problems)}: "
            "teach the rule in tests/helpers/tiering.py what this test uses",
            pytrace=False,
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run of only the unit and process tiers (selected with ``-m``) must not have loaded a framework."""
    tiers = {item.stash[TIER].name for item in session.items if TIER in item.stash}
    loaded = tiering.loaded_frameworks()
    if session.config.option.markexpr and tiers and tiers <= set(tiering.FAST) and loaded:
        writer = session.config.get_terminal_writer()
        writer.line()
        writer.line(
            f"ERROR: {', '.join(loaded)} imported in a run of only {' and '.join(sorted(tiers))} tests",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
