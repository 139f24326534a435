"""Fixtures shared by every test directory: the fault filesystem and the second host."""

pytest_plugins = ["tests.faultfs.fixtures"]
