"""Every coordinator test starts runners that import the toy entry from the tests package."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _runners_import_tests(runners_can_import_tests: None) -> None:
    """See ``runners_can_import_tests`` in ``tests/conftest.py``."""
