"""The hygiene check (``tests/helpers/hygiene.py``) fails a test for what it leaves, and only for that."""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import hygiene


def _run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    """A test file made of ``source``, run here (in this process) with the hygiene check alone."""
    pytester.makeconftest('pytest_plugins = ["tests.helpers.hygiene"]')
    pytester.makepyfile(textwrap.dedent(source))
    return pytester.runpytest_inprocess("-p", "no:timeout", "-p", "no:cacheprovider")


def test_what_a_test_leaves_fails_it(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        f"""
        import signal, threading
        from candle_restart.runtime.preempt import REQUEST, arm

        def test_request():
            REQUEST.halt("a test's walltime")

        def test_armed():
            arm([signal.SIGUSR2])

        def test_handler():
            signal.signal(signal.SIGUSR2, lambda s, f: None)

        def test_thread():
            done = threading.Event()
            threading.Thread(target=done.wait, args=({hygiene.WAIT + 0.5},), name="candle-commit 1").start()

        def test_clean_after_the_leaks():
            assert not REQUEST.requested and signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
        """,
    )
    result.assert_outcomes(passed=5, errors=4)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_request*",
            "the test left a pending preemption request (walltime)",
            "*ERROR at teardown of test_armed*",
            "the test left request handlers still armed for SIGUSR2",
            "*ERROR at teardown of test_handler*",
            "the test left changed signal handlers: SIGUSR2",
            "*ERROR at teardown of test_thread*",
            "the test left threads still running: candle-commit 1",
        ]
    )


def test_a_request_made_on_purpose_is_cleared_by_its_fixture(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        from candle_restart.runtime.preempt import REQUEST

        def test_asks(preemption):
            preemption.request(10)
            assert REQUEST.requested

        def test_after():
            assert not REQUEST.requested
        """,
    )
    result.assert_outcomes(passed=2)
