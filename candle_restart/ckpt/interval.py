"""How many batches between checkpoints keep their overhead under a target (pure).

CheckFreq (Mohan et al., FAST '21) keeps checkpoint overhead within a few
per cent by choosing the interval from measured costs rather than fixing it.
Here the cost of a checkpoint is the time training is *blocked* by it
(``blocked``: the snapshot, and any wait for the previous commit), the work
between checkpoints is ``per_batch`` seconds a batch, and the target is the
fraction ``target`` of wall time that checkpoints may take.

With ``N`` batches between checkpoints the overhead is ``B / (N*P + B)``;
keeping it at or under ``t`` needs ``N >= B*(1-t) / (t*P)``.  ``debt`` (seconds
blocked beyond the target's share of the time so far; negative when under
it) is paid back by the next interval, so an early expensive checkpoint,
such as the first one that measured ``B``, stretches the next interval
rather than the run's overhead: after the next checkpoint the run as a whole
is at the target again.  The result is clamped to ``[minimum, maximum]``.
"""

from __future__ import annotations

import math

MAXIMUM = 1_000_000


def choose_interval(
    blocked: float,
    per_batch: float,
    target: float,
    debt: float = 0.0,
    minimum: int = 1,
    maximum: int = MAXIMUM,
) -> int:
    """Batches from one checkpoint to the next so that overhead stays at or under ``target``.

    ``blocked``: seconds training is blocked per checkpoint; ``per_batch``:
    seconds a batch takes without checkpoints; ``target``: a fraction in
    (0, 1); ``debt``: seconds blocked so far beyond ``target`` times the
    elapsed time (see the module docstring).  ValueError for a target
    outside (0, 1) or negative costs.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be a fraction between 0 and 1, got {target!r}")
    if blocked < 0 or per_batch < 0 or not (math.isfinite(blocked) and math.isfinite(per_batch)):
        raise ValueError(f"costs must be finite and >= 0, got blocked={blocked!r} per_batch={per_batch!r}")
    minimum = max(1, minimum)
    maximum = max(minimum, maximum)
    if per_batch == 0:  # no measured work yet: as rarely as allowed unless checkpoints are free
        return minimum if blocked == 0 and debt <= 0 else maximum
    needed = (blocked * (1.0 - target) + debt) / (target * per_batch)
    if not math.isfinite(needed):
        return maximum
    return int(min(max(math.ceil(needed - 1e-9), minimum), maximum))


def overhead(blocked: float, per_batch: float, batches: int) -> float:
    """The fraction of wall time blocked with ``batches`` batches per checkpoint: ``B / (N*P + B)``."""
    total = batches * per_batch + blocked
    return blocked / total if total > 0 else 0.0


def describe(interval: int, blocked: float, per_batch: float, target: float, debt: float = 0.0) -> str:
    """The log line that says what was chosen and why."""
    owed = f", {debt:+.3f} s owed so far" if abs(debt) >= 0.0005 else ""
    return (
        f"interval: checkpoint every {interval} batches (blocked {blocked:.3f} s per checkpoint, "
        f"{per_batch:.4f} s per batch{owed}, target {target:.1%}: "
        f"{overhead(blocked, per_batch, interval):.1%} at this interval)"
    )
