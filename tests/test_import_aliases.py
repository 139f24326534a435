"""Old import paths keep working: a module that moved is the SAME module object under its old name.

`candle_restart.ckpt.preempt` and the rest moved to `candle_restart.runtime`, CANDLE's API
(``candle_restart.ckpt.candle``, ...) to `candle_restart.candle`; a user's
``from candle_restart.ckpt.preempt import REQUEST`` must reach the one process-wide request the
callbacks and the runner use, not a second copy (a copy's handlers would set a flag nobody reads).
The old names are written as strings here on purpose (the rename script leaves this file alone).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.processes import runner_env

MOVED = {
    "candle_restart.ckpt.fsio": "candle_restart.runtime.fsio",
    "candle_restart.ckpt.envvars": "candle_restart.runtime.envvars",
    "candle_restart.ckpt.lease": "candle_restart.runtime.lease",
    "candle_restart.ckpt.preempt": "candle_restart.runtime.preempt",
    "candle_restart.ckpt.heartbeat": "candle_restart.runtime.heartbeat",
    "candle_restart.ckpt.deadline": "candle_restart.runtime.deadline",
    "candle_restart.ckpt.candle": "candle_restart.candle.facade",
    "candle_restart.ckpt.candle_params": "candle_restart.candle.params",
    "candle_restart.ckpt.candle_types": "candle_restart.candle.types",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_name_is_the_new_module(old: str) -> None:
    new = importlib.import_module(MOVED[old])
    assert importlib.import_module(old) is new
    package, _, name = old.rpartition(".")
    assert getattr(importlib.import_module(package), name) is new  # from candle_restart.ckpt import fsio


def test_the_singletons_are_shared_whichever_name_imports_them() -> None:
    old_preempt = importlib.import_module("candle_restart.ckpt.preempt")
    from candle_restart.runtime import heartbeat, lease, preempt

    assert old_preempt.REQUEST is preempt.REQUEST
    assert old_preempt.Preempted is preempt.Preempted
    assert importlib.import_module("candle_restart.ckpt.heartbeat").HEARTBEAT is heartbeat.HEARTBEAT
    assert importlib.import_module("candle_restart.ckpt.lease").Lease is lease.Lease


def test_candles_names_are_where_users_import_them() -> None:
    """The names CANDLE's users import (README) are the objects of `candle_restart.candle`."""
    import candle_restart
    from candle_restart import ckpt_utils
    from candle_restart.candle import CandleCkpt, CandleCkptModel, ModelType, ParamRequired

    old = importlib.import_module("candle_restart.ckpt")
    for name, obj in [("CandleCkpt", CandleCkpt), ("CandleCkptModel", CandleCkptModel),
                      ("ModelType", ModelType), ("ParamRequired", ParamRequired)]:
        assert getattr(old, name) is obj
        assert getattr(ckpt_utils, name) is obj
    assert candle_restart.CandleCkpt is CandleCkpt and candle_restart.ModelType is ModelType


def test_a_fresh_process_importing_the_old_name_first_gets_one_module() -> None:
    """The old name imported before anything else (as a user's program would) and the new one after."""
    code = textwrap.dedent(
        """
        from candle_restart.ckpt.preempt import REQUEST, Preempted
        from candle_restart.ckpt.lease import Lease
        from candle_restart.ckpt.candle import CandleCkpt
        import candle_restart.runtime.preempt as preempt
        import candle_restart.candle as candle
        import candle_restart.runtime.lease as lease
        assert REQUEST is preempt.REQUEST and Preempted is preempt.Preempted, "two preempt modules"
        assert Lease is lease.Lease, "two lease modules"
        assert CandleCkpt is candle.CandleCkpt, "two facades"
        print("one module each")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], env=runner_env(), text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "one module each"
