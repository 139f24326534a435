"""The one ``ckpt.log`` line that says what a restart restored.

``restarting: restored weights (N variables), optimizer (M variables[, when training starts]),
RNG (K seed generators), metric accumulators (mid-epoch) | none (epoch end), position (epoch E
batch B | after epoch E), callbacks (names, when training starts) | none saved``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from candle_restart.records.ckptinfo import CkptInfo


def restored_line(
    model: Any,
    info: CkptInfo | None,
    metrics: Sequence[object] | None,
    parked_optimizer: int | None,
    callbacks: Sequence[str] | None,
) -> str:
    """The line for ``model`` just restored (``parked_optimizer``: values waiting for ``compile``)."""
    variables = list(getattr(model, "variables", []))
    seeds = sum(1 for v in variables if "seed_generator" in str(getattr(v, "path", "")))
    optimizer = getattr(model, "optimizer", None)
    if parked_optimizer is not None:
        opt = f"optimizer ({parked_optimizer} variables, when training starts)"
    elif optimizer is not None:
        opt = f"optimizer ({len(list(optimizer.variables))} variables)"
    else:
        opt = "optimizer (none saved)"
    position = info.position if info is not None else None
    where = (
        f"position (epoch {position.epoch} batch {position.batch})"
        if position is not None
        else f"position (after epoch {info.epoch if info is not None else '?'})"
    )
    accumulators = (
        f"metric accumulators ({len(metrics)}, mid-epoch)"
        if metrics
        else "metric accumulators (none: epoch end)"
    )
    cbs = (
        f"callbacks ({', '.join(callbacks)}; when training starts)" if callbacks else "callbacks (none saved)"
    )
    parts = [
        f"weights ({len(variables) - seeds} variables)",
        opt,
        f"RNG ({seeds} seed generators)",
        accumulators,
        where,
        cbs,
    ]
    return "restarting: restored " + ", ".join(parts)
