"""What the ``candle-restart`` commands show and how they find their folder.

* ``commands.py``: ``status``, ``results``, ``report``, ``ckpt``, ``run`` and ``demo``
  (`candle_restart.cli` parses the arguments and calls these);
* ``results.py``: one row per task (parameters, state, metric, result) and the best task;
* ``where.py``: a folder that holds no tasks is refused in one line that points at the right one;
* ``output.py``: JSON written through one typed helper (strict JSON), and a closed pipe that
  ends the output quietly.
"""
