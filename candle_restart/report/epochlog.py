"""A checkpoint directory's trainings, epoch by epoch, from ``events.jsonl`` (``ckpt.log`` before it).

`read_epoch_log` reads ``ckpts/events.jsonl`` (`candle_restart.records.epochs`) when the
directory has one; a directory written before events existed is read from ``ckpt.log`` by the
old parser (`candle_restart.report.epochlog_legacy`), and so is one whose events do not read
(the problem is kept in `EpochLog.problems`).

From the events (`sessions_from_events`):

* a ``restart`` event starts a session: resumed with ``epoch`` epochs done from a checkpoint
  (``position``: taken inside the next epoch), or fresh;
* an ``epoch`` event is an epoch end of the current session, with the monitored metric's
  value (None when it was not computed or not finite); an epoch numbered no higher than the
  session's last end starts a new session (a training that never called ``restart``);
* a ``commit`` at an epoch end past every epoch the session has seen end (or resumed after)
  counts as that epoch's end (a script that saves without `ckpt_epoch`); any other commit (the
  commit thread's, late, after the next epoch's end; one inside an epoch) changes nothing.
  Epochs are matched by number, never by the order of lines.

Contract: never writes; `sessions_from_events` never raises; `read_epoch_log` returns None when
the directory has neither file, and raises ``OSError`` only when ``ckpt.log`` is needed and
exists but cannot be read.
"""

from __future__ import annotations

from pathlib import Path

from candle_restart.ckpt.layout import LOG_FILE
from candle_restart.records.epochs import EpochEvent, EventFileError, events_path, read_events
from candle_restart.report.epochlog_legacy import read_legacy_log
from candle_restart.report.sessions import EpochLog, Session


def sessions_from_events(events: list[EpochEvent]) -> EpochLog:
    """The sessions the events describe (see the module docstring)."""
    metric: str | None = None
    sessions: list[Session] = []
    ended: set[int] = set()  # epochs the current session has seen end

    def new_session(started: str) -> Session:
        ended.clear()
        sessions.append(Session(started=started))
        return sessions[-1]

    for event in events:
        session = sessions[-1] if sessions else None
        if event.kind == "restart":
            session = new_session(event.time)
            session.resumed_from = event.epoch
            session.position = dict(event.position) if event.position is not None else None
        elif event.kind == "epoch" and event.epoch is not None:
            if session is None or (session.epoch_ends and event.epoch <= session.epoch_ends[-1][0]):
                session = new_session(event.time)
            metric = metric or event.metric
            session.epoch_ends.append((event.epoch, event.value if event.metric is not None else None))
            ended.add(event.epoch)
        elif event.kind == "commit" and event.epoch is not None and event.position is None:
            if session is None:
                session = new_session(event.time)
            if event.epoch > max(ended, default=session.resumed_from or 0):
                session.epoch_ends.append((event.epoch, None))
                ended.add(event.epoch)
    return EpochLog(metric, sessions, source="events.jsonl")


def read_epoch_log(ckpt_dir: Path) -> EpochLog | None:
    """The sessions of the checkpoint directory ``ckpt_dir`` (see the module contract)."""
    problems: list[str] = []
    if events_path(ckpt_dir).exists():
        try:
            return sessions_from_events(read_events(ckpt_dir))
        except EventFileError as exc:
            problems.append(f"{exc}; epochs read from {LOG_FILE} instead")
    log = read_legacy_log(Path(ckpt_dir) / LOG_FILE)
    if log is None:
        return EpochLog(None, [], source="", problems=problems) if problems else None
    log.problems = problems
    return log
