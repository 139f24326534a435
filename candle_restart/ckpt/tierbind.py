"""Binding a node-local tier to its shared tier, so a stale node-local tier never beats a fresh start.

The node-local tier of a two-tier run is named after the shared tier's path
(`candle_restart.ckpt.drain.local_root`).  A path is not an identity: after
``ckpts/`` is moved aside (``resume --restart-corrupt``), deleted, or its run root
re-created at the same path, the node-local tier an earlier run left there belongs
to a shared tier that is gone, and restarting from it (then draining it into the
fresh shared tier) would resurrect the run the user discarded.

So the shared tier carries an identity, ``tier-id.json``
(`candle_restart.records.localtier.TierId`): created by its first two-tier writer
and never changed; and each node-local tier records the identity it belongs to.
`bind_local_tier` runs whenever a two-tier writer takes the writer lease, before
anything reads or writes the node-local tier:

* the shared tier without an identity gets a new one (fenced, written atomically);
* a node-local tier with the same identity is this shared tier's: nothing changes;
* a node-local tier with another identity, none, or a malformed one is ignored: one
  log line when it held checkpoints, then it is removed (fenced) and started afresh,
  bound to this shared tier.  It is a node's copy of checkpoints whose shared tier
  was discarded; nothing of the shared tier is touched.

A malformed shared identity raises `LocalTierError` (one line: file, key, problem)
before anything changes; a transient I/O error raises too (never taken for a
missing or foreign identity).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from candle_restart.ckpt.layout import CkptLayout
from candle_restart.records.localtier import TIER_ID_FILE, LocalTierError, TierId, read_tier_id
from candle_restart.runtime.fsio import atomic_write_bytes

Log = Callable[[str], None]


def bind_local_tier(local: CkptLayout, shared: CkptLayout, fence: Callable[[], None], log: Log) -> TierId:
    """Make ``local`` the node-local tier of ``shared`` (see the module docstring); the shared
    tier's identity.  Its caller holds the writer lease; ``fence`` checks it before each write."""
    ident = read_tier_id(shared.root / TIER_ID_FILE)
    if ident is None:
        ident = TierId.new()
        fence()
        shared.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(shared.root / TIER_ID_FILE, ident.to_bytes())
    try:
        mine = read_tier_id(local.root / TIER_ID_FILE)
        why = (
            "it has no tier identity (left by an earlier version)"
            if mine is None
            else f"it belongs to tier {mine.tier_id}, and {shared.root} is tier {ident.tier_id} "
            "(moved aside, deleted or re-created since)"
        )
    except LocalTierError as exc:
        mine, why = None, f"its identity is unreadable ({exc})"
    if mine is not None and mine.tier_id == ident.tier_id:
        return ident
    fence()
    if local.list_epochs():
        log(f"ignoring the node-local tier {local.root}: {why}; it is removed and starts afresh")
    shutil.rmtree(local.root, ignore_errors=True)
    local.root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(local.root / TIER_ID_FILE, ident.to_bytes())
    return ident
