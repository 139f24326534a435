"""The training-task runner: a task directory in, DESIGN's exit code out.

* `TaskDir`, `TaskSpec`, `create_task`, `make_task_id` (``taskdir.py``): the files of a task.
* `run_task` (``runner.py``): run it once, record it.
"""

from candle_restart.task.runner import run_task
from candle_restart.task.taskdir import TaskDir, TaskError, TaskSpec, create_task, make_task_id

__all__ = ["TaskDir", "TaskError", "TaskSpec", "create_task", "make_task_id", "run_task"]
