"""The fallback: a checkpoint directory's ``ckpt.log`` read back into epochs, metric values and restarts.

Only for checkpoint directories written before ``events.jsonl`` existed (see
`candle_restart.report.epochlog`, which reads the events when there are any): CANDLE's log
lines are for people and CANDLE's tools, and parsing them is a last resort.

The log is CANDLE's (see `candle_restart.ckpt.log`): ``YYYY-mm-dd HH:MM:SS CandleCkpt: message``
lines, where a message may go on over the next lines (the ``ckpt-info.json`` dump at a restart).
What a process's callback writes, and what is taken from it:

* ``Callback initialized.``: a new session (one callback of one attempt);
* ``{...}`` after ``ckpt-info.json contains:``: the checkpoint it restarted from (its
  ``position`` says whether it was taken inside an epoch);
* ``restarting from epoch: J``: the session resumed with J epochs done;
* ``metrics: NAME: current=V ...``: an epoch ended with metric value V (printed with 6 decimals);
* ``model saving disabled until epoch N``, ``not writing this epoch.``, ``writing final epoch N``
  and ``rename: ... -> '.../epochs/NNN'``: the other ways an epoch end shows (the rename also
  names the epoch, which resynchronises the count);
* ``writing mid-epoch checkpoint: epoch E batch B``: the next rename is a checkpoint taken
  inside epoch E, not an epoch end;
* with asynchronous commits the ``rename`` of epoch N comes from the commit thread and may
  follow the ``metrics`` line of epoch N+1; a rename of an epoch before the current count
  is such a late one and changes nothing;
* ``preempted: ...``: the session stopped on a signal.

Contract: `parse_epoch_log` never raises on content (unknown or garbled lines are skipped)
and never writes; `read_legacy_log` returns None when there is no log and raises `OSError`
only when one exists but cannot be read.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from candle_restart.errors import CorruptCheckpointError
from candle_restart.records.ckptinfo import CkptInfo
from candle_restart.records.jsonio import JsonError, loads
from candle_restart.report.sessions import EpochLog, Session

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) CandleCkpt: (.*)$")
_METRICS = re.compile(r"^metrics: (.+?): current=(\S+) ")
_RESTART = re.compile(r"^restarting from epoch: (\d{1,9})")
_DISABLED = re.compile(r"^model saving disabled until epoch")
_FINAL = re.compile(r"^writing final epoch (\d{1,9})")
_MIDEPOCH = re.compile(r"^writing mid-epoch checkpoint: epoch (\d+) batch (\d+)")
_RENAME = re.compile(r"^rename: .*epochs/(\d{3,9})'\s*$")
_SAVE_BEST = re.compile(r"^save_best_metric='(.*)'$")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class _Parser:
    def __init__(self) -> None:
        self.metric: str | None = None
        self.sessions: list[Session] = []
        self.epoch = 0  # epochs done in the current session, as far as the log tells
        self.open = False  # an epoch end was logged whose save decision has not been seen yet
        self.midepoch = False  # the next rename is a mid-epoch checkpoint

    @property
    def session(self) -> Session:
        if not self.sessions:  # a log that starts mid-way (rotated or truncated)
            self.sessions.append(Session(started=""))
        return self.sessions[-1]

    def end_epoch(self, epoch: int, value: float | None) -> None:
        self.epoch = epoch
        self.session.epoch_ends.append((epoch, value))

    def resync(self, epoch: int) -> None:
        """An epoch's own number (from a rename or 'final epoch') for the end just logged."""
        ends = self.session.epoch_ends
        if self.open and ends:
            ends[-1] = (epoch, ends[-1][1])
            self.epoch = epoch
        elif epoch != self.epoch:
            self.end_epoch(epoch, None)
        self.open = False

    def message(self, stamp: str, text: str) -> None:
        if text == "Callback initialized.":
            self.sessions.append(Session(started=stamp))
            self.epoch, self.open, self.midepoch = 0, False, False
        elif m := _METRICS.match(text):
            self.metric = m.group(1)
            self.end_epoch(self.epoch + 1, _number(m.group(2)))
            self.open = True
        elif _DISABLED.match(text):
            self.end_epoch(self.epoch + 1, None)
        elif text == "not writing this epoch.":
            if not self.open:
                self.end_epoch(self.epoch + 1, None)
            self.open = False
        elif m := _FINAL.match(text):
            self.resync(int(m.group(1)))
        elif _MIDEPOCH.match(text):
            self.midepoch = True
        elif m := _RENAME.match(text):
            if self.midepoch:
                self.midepoch = False
            elif int(m.group(1)) >= self.epoch:
                self.resync(int(m.group(1)))
            # else: the commit thread finished an earlier epoch's checkpoint after a later
            # epoch's end was logged (asynchronous commits); the count is already ahead.
        elif m := _RESTART.match(text):
            self.session.resumed_from = self.epoch = int(m.group(1))
        elif text.startswith("preempted: "):
            self.session.preempted = text[len("preempted: ") :]
        elif m := _SAVE_BEST.match(text):
            self.metric = self.metric or m.group(1)

    def dump(self, text: str) -> None:
        """The ``ckpt-info.json`` a restart read, logged as one multi-line message."""
        try:
            info = CkptInfo.from_json(loads(text), "ckpt.log")
        except (JsonError, CorruptCheckpointError):
            return
        position = info.position
        self.session.position = None if position is None else {"epoch": position.epoch, "batch": position.batch}


def parse_epoch_log(text: str) -> EpochLog:
    """The sessions, epoch ends and restarts in the text of a ``ckpt.log`` (see the module docstring)."""
    parser = _Parser()
    pending: list[str] | None = None  # the lines of a multi-line message being collected
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            if pending is not None:
                pending.append(line)
            continue
        if pending is not None:
            parser.dump("\n".join(pending))
            pending = None
        stamp, message = m.groups()
        if message == "{":
            pending = [message]
        else:
            parser.message(stamp, message)
    if pending is not None:
        parser.dump("\n".join(pending))
    return EpochLog(parser.metric, parser.sessions, source="ckpt.log")


def read_legacy_log(path: Path) -> EpochLog | None:
    """`parse_epoch_log` of the file at ``path``; None when it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    return parse_epoch_log(text)
