"""What one checkpoint directory's trainings did, epoch by epoch: `Session` and `EpochLog`.

Built from ``events.jsonl`` (`candle_restart.report.epochlog`) or, for directories written
before it existed, from ``ckpt.log`` (`candle_restart.report.epochlog_legacy`); the report
(`candle_restart.report.collect`) reads only these types, never either file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Session:
    """What one training (one callback, one attempt) did, from its restart to its last epoch end."""

    started: str
    resumed_from: int | None = None  # epochs done when it restarted; None: it started fresh
    position: Mapping[str, int] | None = None  # the restart checkpoint's position (mid-epoch) or None
    epoch_ends: list[tuple[int, float | None]] = field(default_factory=list)  # (1-based epoch, metric)
    preempted: str | None = None  # ckpt.log only: the reason its "preempted:" line gave


@dataclass
class EpochLog:
    """The sessions of one checkpoint directory, in order, and what follows from them."""

    metric: str | None
    sessions: list[Session]
    source: str = "events.jsonl"  # or "ckpt.log": the file it was read from
    problems: list[str] = field(default_factory=list)  # why events.jsonl was not used, when it was not

    def values(self) -> dict[int, float]:
        """Each epoch's metric at its end (the latest time it ended, when it was trained twice)."""
        out: dict[int, float] = {}
        for session in self.sessions:
            for epoch, value in session.epoch_ends:
                if value is not None:
                    out[epoch] = value
                else:
                    out.pop(epoch, None)
        return out

    @property
    def trained(self) -> int:
        """Epoch ends logged, counting an epoch trained again after a restart each time."""
        return sum(len(s.epoch_ends) for s in self.sessions)

    @property
    def redone(self) -> int:
        """Epoch ends beyond the first of the same epoch: training a restart had to repeat."""
        distinct = {epoch for s in self.sessions for epoch, _ in s.epoch_ends}
        return self.trained - len(distinct)
