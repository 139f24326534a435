"""The Parsl app: one task runner process per task directory.

A ``bash_app`` (not a ``python_app``) so each task gets a fresh process:
TensorFlow state cannot leak between tasks, and a signal sent to the task's
pid (recorded in its ``state.json``) reaches the training.  The command
``exec``s the runner so no shell stands between the signal and the handler.
"""

from __future__ import annotations

from parsl import bash_app


@bash_app
def run_task_app(
    task_dir: str, generation: int, python: str, stdout: str | None = None, stderr: str | None = None
) -> str:
    """The shell command Parsl runs: ``CANDLE_RESTART_GENERATION=g exec python -m candle_restart.task DIR``."""
    import shlex

    from candle_restart.runtime.envvars import GENERATION_ENV

    return (
        f"{GENERATION_ENV}={int(generation)} "
        f"exec {shlex.quote(python)} -m candle_restart.task {shlex.quote(task_dir)}"
    )
