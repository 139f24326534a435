"""`EpochEvents`: the checkpoint writer's side of ``ckpts/events.jsonl`` (`candle_restart.records.epochs`).

`CandleCkpt` holds one as ``self.events`` and calls it in one line where something happens:
an epoch ends (`epoch_end`), saving is disabled (`disabled`), a checkpoint is taken (`saving`
returns a `PendingCommit`, which the commit, in whatever thread, reports through), a restart
begins (`restoring`) and chooses its checkpoint or a fresh start (`restarted`, with the seconds
since `restoring`), the first batch of the session ends (`train_started`, once). `restore._set_aside` reports through
`set_aside`.

Contract: recording an event never fails or stops the training. Any error building or
appending one (a full disk, a vanished directory, a metric value that is not a number) is
logged once per `EpochEvents` through its ``warn`` and the event is dropped. A missing
``ckpt_directory`` is created, as the first save would. ``ckpt.log`` is unaffected: it keeps
CANDLE's lines for CANDLE's tools.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from candle_restart.ckpt.layout import epoch_name
from candle_restart.ckpt.params import CkptParams
from candle_restart.records.epochs import CommitReason, EpochEvent, append_event, now_iso
from candle_restart.runtime.preempt import REQUEST

Warn = Callable[[str], None]


class EpochEvents:
    """Appends the events of one checkpoint writer to ``root/events.jsonl``, best effort."""

    def __init__(self, root: Path, warn: Warn, metric: str | None = None) -> None:
        """``metric``: the monitored metric (``ckpt_save_best_metric``), None when no best is tracked."""
        self.root = Path(root)
        self.metric = metric
        self._warn = warn
        self._warned = False
        self._lock = threading.Lock()  # the training thread and the commit thread both append
        self._restoring: float | None = None  # monotonic time a restart began
        self._trained = False  # the session's train_start is recorded

    @classmethod
    def of(cls, settings: CkptParams, root: Path, warn: Warn) -> EpochEvents:
        """The events of a writer with these gParameters (the metric it monitors, if any)."""
        return cls(root, warn, settings.save_best_metric if settings.save_best else None)

    def record(self, build: Callable[[], EpochEvent]) -> None:
        """Build and append an event; any error is logged once and otherwise ignored (the module contract)."""
        try:
            event = build()
            with self._lock:
                try:
                    append_event(self.root, event)
                except FileNotFoundError:  # before the first save (no log, no restart) made it
                    self.root.mkdir(parents=True, exist_ok=True)
                    append_event(self.root, event)
        except OSError as exc:
            self._failed(f"{exc.strerror or exc}")
        except Exception as exc:  # a record is never worth a training (the module contract)
            self._failed(f"{type(exc).__name__}: {exc}")

    def _failed(self, problem: str) -> None:
        if not self._warned:
            self._warned = True
            self._warn(
                f"events.jsonl: cannot record an event ({problem}); training goes on, events may be missing"
            )

    def epoch_end(
        self, epoch: int, value: float | None, direction: str, logs: Mapping[str, object] | None = None
    ) -> None:
        """1-based ``epoch`` ended; ``value`` is the monitored metric's (None: not computed this
        epoch), better in ``direction`` "+"/"-"; ``logs`` holds every metric of the epoch."""
        metric = self.metric
        self.record(
            lambda: EpochEvent(
                kind="epoch",
                time=now_iso(),
                epoch=int(epoch),
                metric=metric,
                value=None if metric is None or value is None else float(value),
                mode=None if metric is None else ("max" if direction == "+" else "min"),
                metrics=_numbers(logs),
            )
        )

    def disabled(self, epoch: int, until: int) -> None:
        """1-based ``epoch`` ended with saving disabled until epoch ``until``."""
        self.record(lambda: EpochEvent(kind="disabled", time=now_iso(), epoch=int(epoch), until=int(until)))

    def saving(
        self, epoch: int, position: Mapping[str, int] | None, best: bool, final: bool
    ) -> PendingCommit:
        """A checkpoint of 1-based ``epoch`` is being taken (the top of ``save_epoch``).

        ``best``: it is the run's best; ``final``: the last epoch. The reason recorded is, inside an
        epoch, "preempt" when a stop is requested, else "midepoch"; at an epoch end, "best", "final",
        "preempt" (a stop is requested) or "epoch", the first that applies.
        """
        reason: CommitReason
        if position is not None:
            reason = "preempt" if REQUEST.requested else "midepoch"
        else:
            reason = "best" if best else "final" if final else "preempt" if REQUEST.requested else "epoch"
        where = (
            None if position is None else {"epoch": int(position["epoch"]), "batch": int(position["batch"])}
        )
        return PendingCommit(self, int(epoch), where, reason)

    def restoring(self) -> None:
        """A restart begins: `restarted` records the seconds from now."""
        self._restoring = time.monotonic()

    def train_started(self) -> None:
        """The first batch of this session ended: record ``train_start`` (once; later calls do nothing)."""
        if not self._trained:
            self._trained = True
            self.record(lambda: EpochEvent(kind="train_start", time=now_iso()))

    def restarted(self, path: Path | None, info: Mapping[str, object] | None, via: str | None = None) -> None:
        """A restart chose the checkpoint at ``path`` (its ``ckpt-info.json`` is ``info``), or none:
        a fresh start."""
        began, self._restoring = self._restoring, None
        seconds = None if began is None else round(time.monotonic() - began, 6)

        def build() -> EpochEvent:
            if path is None or info is None:
                return EpochEvent(kind="restart", time=now_iso(), seconds=seconds)
            done, position = info.get("epoch"), info.get("position")
            return EpochEvent(
                kind="restart",
                time=now_iso(),
                seconds=seconds,
                epoch=done if isinstance(done, int) and not isinstance(done, bool) and done >= 0 else None,
                path=self._relative(path),
                position=_position(position),
                via=via,
            )

        self.record(build)

    def _relative(self, path: Path) -> str:
        """``path`` relative to this checkpoint directory (``epochs/NNN``), or absolute outside it."""
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


@dataclass
class PendingCommit:
    """A checkpoint between `EpochEvents.saving` and its commit; times it, then records the commit."""

    events: EpochEvents
    epoch: int
    position: dict[str, int] | None
    reason: CommitReason
    started: float = field(default_factory=time.monotonic)
    caller: int = field(default_factory=threading.get_ident)  # the training thread
    begun: float | None = None  # when writing began
    background: bool = False  # written by another thread than the one that took it

    def writing(self) -> None:
        """Writing begins (first thing in the write-and-commit job, in whatever thread runs it)."""
        self.begun = time.monotonic()
        self.background = threading.get_ident() != self.caller

    def committed(self, directory: Path | None = None) -> None:
        """The checkpoint is committed as ``epochs/NNN``: record it, with its size and times.

        ``directory``: where it was committed, when not below this ``events.jsonl`` (a node-local tier).

        Training was blocked until writing began when a thread of its own writes it, else
        until now.
        """
        now = time.monotonic()
        taken = datetime.now(timezone.utc) - timedelta(seconds=now - self.started)
        begun = self.begun if self.begun is not None else self.started
        name = f"epochs/{epoch_name(self.epoch)}"
        self.events.record(
            lambda: EpochEvent(
                kind="commit",
                time=now_iso(),
                epoch=self.epoch,
                path=name,
                position=self.position,
                bytes=_size(self.events.root / name if directory is None else directory),
                write_seconds=round(now - begun, 6),
                blocked_seconds=round((begun if self.background else now) - self.started, 6),
                reason=self.reason,
                taken=taken.isoformat(timespec="milliseconds"),
            )
        )


def set_aside(path: Path, aside: Path, problem: str, log: Warn) -> None:
    """Record that the checkpoint ``path`` (``<root>/epochs/NNN``) failed verification with ``problem``
    and was renamed ``aside``; an error is logged through ``log`` and otherwise ignored."""
    root = path.parent.parent
    event = EpochEvent(
        kind="set_aside",
        time=now_iso(),
        path=f"{path.parent.name}/{path.name}",
        aside=f"{aside.parent.name}/{aside.name}",
        problem=problem,
    )
    try:
        append_event(root, event)
    except OSError as exc:
        log(f"restarting: events.jsonl: cannot record the set-aside ({exc.strerror or exc})")


def _numbers(logs: Mapping[str, object] | None) -> dict[str, float | None] | None:
    """The numeric entries of a framework's logs (a scalar tensor or numpy value included)."""
    if logs is None:
        return None
    out: dict[str, float | None] = {}
    for key, value in logs.items():
        try:
            out[str(key)] = float(value)  # type: ignore[arg-type]  # anything with __float__
        except (TypeError, ValueError):
            continue
    return out


def _position(value: object) -> dict[str, int] | None:
    if (
        isinstance(value, Mapping)
        and isinstance(value.get("epoch"), int)
        and isinstance(value.get("batch"), int)
    ):
        return {"epoch": int(value["epoch"]), "batch": int(value["batch"])}
    return None


def _size(directory: Path) -> int | None:
    """Bytes of the files in ``directory`` (a checkpoint holds no subdirectories); None if unreadable."""
    try:
        with os.scandir(directory) as entries:
            return sum(e.stat().st_size for e in entries if e.is_file(follow_symlinks=False))
    except OSError:
        return None
