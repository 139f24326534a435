"""The one home of the tests' shared helpers; tests import them from here (``from tests.helpers import ...``).

Fixtures live in ``tests/conftest.py`` (shared) and in a directory's own ``conftest.py`` (only
those local to it); no test imports a conftest module.

| module | what |
| --- | --- |
| ``processes`` | ``ROOT``; child processes: the task runner, ``candle-restart``, the example benchmark; progress FIFOs; a child's stdout lines and stopped state |
| ``tasks`` | toy tasks in known states; a task directory's state and journal read back |
| ``bytes_ckpt`` | ``BytesCkpt``: the framework-free backend of the checkpoint core |
| ``jsonview`` | JSON values read back, narrowed to the shape a test expects (``obj``, ``text``, ``integer``) |
| ``files`` | directory fingerprints (``tree``, ``snapshot``) and golden files (``check_golden``) |
| ``torture`` | fault-injection counts (``report``) and sizes (``trials``) for ``make torture`` |
| ``browser`` | headless Chromium |
| ``runroot`` | a run root with tasks in every kind of state (the report's tests) |
| ``references`` | uninterrupted reference trainings, run once per session (the ``references`` fixture) |
| ``tiering`` | the test tiers' rule and guards (used by ``tests/conftest.py``) |
| ``hygiene`` | the check that no test leaves a request, handlers or threads behind (a plugin) |
"""

from tests.helpers.browser import REQUIRE_BROWSER, chromium, headless
from tests.helpers.bytes_ckpt import BytesCkpt, BytesModel
from tests.helpers.files import check_golden, snapshot, split_steps, tree
from tests.helpers.jsonview import integer, obj, text
from tests.helpers.processes import (
    EXAMPLE,
    HANG,
    ROOT,
    Lockstep,
    cli,
    open_progress,
    progress,
    read_until,
    run_example,
    run_runner,
    runner_env,
    start_example,
    start_runner,
    wait_for_pids,
    wait_stopped,
)
from tests.helpers.runroot import ARTIFACTS, INJECTED, TRAINER, build_run_root
from tests.helpers.tasks import TOY, journal, preempted_task, state, submitted_pids, toy_task
from tests.helpers.torture import report, trials

__all__ = [
    "ARTIFACTS",
    "EXAMPLE",
    "HANG",
    "INJECTED",
    "REQUIRE_BROWSER",
    "ROOT",
    "TOY",
    "TRAINER",
    "BytesCkpt",
    "BytesModel",
    "Lockstep",
    "build_run_root",
    "check_golden",
    "chromium",
    "cli",
    "headless",
    "integer",
    "journal",
    "obj",
    "open_progress",
    "preempted_task",
    "progress",
    "read_until",
    "report",
    "run_example",
    "run_runner",
    "runner_env",
    "snapshot",
    "split_steps",
    "start_example",
    "start_runner",
    "state",
    "submitted_pids",
    "text",
    "toy_task",
    "tree",
    "trials",
    "wait_for_pids",
    "wait_stopped",
]
