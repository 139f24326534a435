"""What a task can show of its progress: the key each attempt's end records as ``ckpt``.

The no-progress breaker (`candle_restart.coordinator.causes.Ledger`) gives a task up after
attempt ends in a row whose keys did not change.  `progress_key` is the key, by what the
task can show:

* a committed checkpoint with a ``ckpt-info.json`` (this project's callbacks, CANDLE's):
  its `commit_key`;
* otherwise, for a ``command`` that keeps its own files in its checkpoint directory
  (``$CANDLE_RESTART_CKPT_DIRECTORY``, ``--ckpt_directory``; a PyTorch script's own saving,
  any program): a fingerprint of those files, ``files:<hash>`` of their count, total size and
  newest modification.  Writing or touching any file there is how a program shows progress.
  The callback's own bookkeeping (``ckpt.log``, ``events.jsonl``, ``local-tier.json``, the
  writer lease, ``work*/``) does not count;
* a ``command`` whose checkpoint directory shows nothing: `UNKNOWN` (it may keep its state
  elsewhere), which the breaker never counts as "no progress";
* an ``entry`` with no checkpoint yet: None, a known "nothing committed".
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from candle_restart.ckpt.info import commit_key
from candle_restart.records.ckptinfo import CkptInfo
from candle_restart.records.journal import NO_CKPT_KEY

UNKNOWN = NO_CKPT_KEY  # recorded by leaving ``ckpt`` out of the event
MAX_FILES = 10_000  # a bigger tree is not walked: its progress is unknown
_OWN = frozenset({"ckpt.log", "events.jsonl", "local-tier.json", "epochs", "last", "best", "work"})


def _own(name: str) -> bool:
    return name in _OWN or name.startswith(("work-", ".writer"))


def files_fingerprint(ckpts: Path) -> str | None:
    """``files:<hash>`` of the program's own files under ``ckpts`` (see the module docstring);
    None when there are none, or more than `MAX_FILES`, or the directory cannot be read."""
    count = size = newest = 0
    try:
        for top, dirs, files in os.walk(ckpts):
            if top == str(ckpts):
                dirs[:] = [d for d in dirs if not _own(d)]
                files = [f for f in files if not _own(f)]
            for name in files:
                try:
                    st = os.stat(os.path.join(top, name), follow_symlinks=False)
                except OSError:
                    continue
                count += 1
                size += st.st_size
                newest = max(newest, st.st_mtime_ns)
                if count > MAX_FILES:
                    return None
    except OSError:
        return None
    if not count:
        return None
    digest = hashlib.sha256(f"{count}:{size}:{newest}".encode()).hexdigest()[:16]
    return f"files:{digest}"


def progress_key(ckpts: Path, info: CkptInfo | None, command: bool) -> str | None:
    """The key of what the task shows in ``ckpts`` (``info``: its newest verified checkpoint)."""
    if info is not None:
        return commit_key(info)
    if not command:
        return None
    return files_fingerprint(ckpts) or UNKNOWN
