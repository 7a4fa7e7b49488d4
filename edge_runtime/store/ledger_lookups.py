"""The ledger's in-memory lookups over its log: every event id (idempotency) and, per SKU, the
log positions of its events (re-folds). The log has no secondary index (see
``edge_runtime.store.ledger``), so these are loaded from the log at open, from the index snapshot
(``edge_runtime.store.ledger_index``) plus the events logged after it, and snapshotted again
now and then so a start reads a short tail.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from array import array
from pathlib import Path

import numpy as np

from edge_runtime.store.event_ids import EventIds
from edge_runtime.store.events import LEDGER_TYPES
from edge_runtime.store.ledger_index import IndexSnapshot, load_index, save_index

INDEX_EVERY = 100_000  # events logged since the last index snapshot before the next is written

log = logging.getLogger(__name__)


class LedgerLookups:
    """The ledger's event ids and per-SKU log positions: loading, snapshotting, forgetting.

    A part of :class:`edge_runtime.store.ledger.Ledger` (which sets the attributes below).

    >>> import os, tempfile
    >>> from edge_runtime.store.ledger import Ledger
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ledger = Ledger(os.path.join(tmp.name, "l.sqlite"), "S1")
    >>> ev = {"event_id": "r1", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 5,
    ...       "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
    >>> ledger.ingest_raw([ev]).accepted, ledger.position(), ledger.holds(1, "r1")
    (1, (1, 'r1'), True)
    >>> ledger.close(); tmp.cleanup()
    """

    _conn: sqlite3.Connection
    _lock: threading.RLock
    ledger_id: str
    index_path: Path
    _index_lock: threading.Lock
    _index_retry_at: float
    _ids: EventIds
    _seqs: dict[str, array]
    _next_seq: int
    _last_id: str
    _indexed_upto: int
    _index_soon: bool
    _index_stale: bool

    def _load_log(self) -> int:
        """The event ids and each SKU's log positions: from the index snapshot when it holds
        for this log, plus one pass over the events logged after it. Returns the position the
        loaded snapshot covers (0: none)."""
        snap = load_index(self.index_path, self.ledger_id)
        if snap is not None and not self.holds(snap.upto, snap.last_id):
            log.warning("ledger index %s does not match the log; rebuilt", self.index_path)
            snap = None
        upto = 0
        if snap is not None:
            self._ids.restore(snap.hi, snap.lo)
            self._seqs = snap.positions
            upto, self._last_id = snap.upto, snap.last_id
        seqs = self._seqs
        last = upto

        def ids():
            nonlocal last
            for seq, event_id, sku, kind in self._conn.execute(
                "SELECT seq, event_id, sku, type FROM events WHERE seq > ? ORDER BY seq", (upto,)
            ):
                if kind in LEDGER_TYPES:
                    positions = seqs.get(sku)
                    if positions is None:
                        positions = seqs[sku] = array("q")
                    positions.append(seq)
                last = seq
                self._last_id = event_id
                yield event_id

        if snap is None:
            self._ids.load(ids())
        else:
            self._ids.update(ids(), unseen=True)
        self._next_seq = last + 1
        return upto

    def holds(self, seq: int, event_id: str) -> bool:
        """Is ``event_id`` the event logged at ``seq`` (position 0 holds before any event)?"""
        if seq == 0:
            return event_id == ""
        row = self._conn.execute("SELECT event_id FROM events WHERE seq = ?", (seq,)).fetchone()
        return row is not None and row[0] == event_id

    def position(self) -> tuple[int, str]:
        """The last committed log position and the id of its event ((0, "") when empty)."""
        with self._lock:
            return self._next_seq - 1, self._last_id

    def write_index(self) -> None:
        """Snapshot the in-memory lookups at the current position (see ``ledger_index``):
        copied under the lock, written outside it."""
        with self._index_lock:
            with self._lock:
                upto, last_id = self._next_seq - 1, self._last_id
                if upto == self._indexed_upto and not self._index_stale:
                    return
                hi, lo = self._ids.folded()  # never mutated in place: no copy needed
                positions = {k: array("q", v) for k, v in self._seqs.items()}
            save_index(
                self.index_path, IndexSnapshot(self.ledger_id, upto, last_id, hi, lo, positions)
            )
            self._indexed_upto = upto
            self._index_soon = self._index_stale = False

    def _index_if_due(self) -> None:
        if not self._index_soon and self._next_seq - 1 - self._indexed_upto < INDEX_EVERY:
            return
        if time.monotonic() < self._index_retry_at:
            return
        try:
            self.write_index()
        except OSError as err:  # a full disk: only a slower next start
            log.warning("ledger index snapshot not written (%s); retried in 60 s", err)
            self._index_retry_at = time.monotonic() + 60.0

    def _forget_positions(self, gone: dict[str, list[int]]) -> None:
        """Drop archived log positions from the per-SKU lookup (re-folds start at the base)."""
        for sku, seqs in gone.items():
            held = self._seqs.get(sku)
            if held is None:
                continue
            kept = np.frombuffer(held, dtype=np.int64)
            kept = kept[~np.isin(kept, np.asarray(seqs, dtype=np.int64))]
            if len(kept):
                self._seqs[sku] = array("q", kept.tobytes())
            else:
                del self._seqs[sku]
