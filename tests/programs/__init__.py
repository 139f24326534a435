"""Programs the tests run as processes of their own (each module's docstring says how), or as the
``entry`` of a task a runner process runs. None is a test; none is imported by the library.

| module | what it is | run by |
| --- | --- | --- |
| ``crash_writer`` | checkpoints in a loop through the core until killed | ``tests/ckpt/test_commit.py`` |
| ``tier_writer`` | a two-tier checkpoint writer that crashes or is preempted | ``tests/ckpt/test_tier_processes.py`` |
| ``lease_writer`` | a writer whose every checkpoint says who wrote it | ``tests/fault/`` |
| ``lock_holder`` | holds a task's lock until killed | ``tests/coordinator/test_resume.py`` |
| ``trainers`` | non-Keras ``command`` trainers and launchers that keep their own state (source text) | ``tests/task/``, ``tests/fault/``, ``tests/coordinator/``, ``tests/sweep/`` |
| ``hang_toy`` | a framework-free training that hangs in a batch or a commit on cue | ``tests/task/test_hang.py`` |
| ``keras_hang`` | the example benchmark, blocked forever inside a batch | ``tests/task/test_hang.py`` |
| ``commit_signal`` | the example benchmark, SIGTERM in the middle of a commit | ``tests/task/test_runner_training.py`` |
| ``hold_commit`` | the example benchmark, its commit of epoch 2 held half-way | ``tests/keras/test_async.py`` |
| ``write_limited`` | the example benchmark under a 64 KiB file-size limit | ``tests/keras/test_async.py`` |
| ``cbstate_bmk`` | a CANDLE-style script with NT3's callbacks beside the checkpoint callback | ``tests/keras/test_callback_state.py`` |

Framework-free toy entries used in process by many tests stay beside their tests
(``tests/coordinator/toy.py``, ``tests/report/trainer.py``), as do the CANDLE compatibility driver
(``tests/keras/candle_compat/``), the PyTorch programs (``tests/torch/``) and the entry that stored
run roots name (``tests/fixtures/tiny_keras.py``). A test names a program by its module path
(``"tests.programs.NAME"``) or its file path: the test tiers' rule (``tests/helpers/tiering.py``)
reads those names to see whether the program imports a framework.
"""
