"""Fixtures shared by every test directory: the fault filesystem, the second host, and runners that
import the tests package. Shared helper functions are in ``tests/helpers/``; a directory's own
``conftest.py`` holds only fixtures local to it."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.helpers")  # their asserts explain themselves, as in a test

from tests.helpers import ROOT  # noqa: E402

pytest_plugins = ["tests.faultfs.fixtures"]


@pytest.fixture
def runners_can_import_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runners started as processes (the local backend's, inheriting the environment) import the
    toy entry and the trainers from the tests package: put the repository on ``PYTHONPATH``.

    Autouse in the directories whose every test needs it (their ``conftest.py``)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
