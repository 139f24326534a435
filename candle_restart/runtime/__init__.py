"""What every process of this project uses and that is not the checkpoint engine.

Imports the standard library, filelock, `candle_restart.errors` and `candle_restart.records` only, so
every layer above (the engine in `candle_restart.ckpt`, the callbacks, the runner, the coordinator,
the backends, the sweeps) may import it; it imports none of them.

* `fsio`: durable file primitives (atomic writes, fsync of files and directories, link swaps).
* `lease`: the lease on shared filesystems (the checkpoint writer's, the runner's, the coordinators').
* `envvars`: the name of every environment variable this project reads or sets.
* `preempt`: preemption signals, the process-wide stop `REQUEST`, `Preempted` and every exit code.
* `heartbeat`: the training's beats for the runner's hang watchdog.
* `deadline`: when the allocation ends, and the halt rule.

These modules lived in `candle_restart.ckpt` before; their old names still import, and are the same
module objects (see `candle_restart.ckpt`).
"""
