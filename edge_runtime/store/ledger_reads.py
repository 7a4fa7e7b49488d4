"""What the ledger answers: a SKU's stock (with its confidence), a page of SKUs, counts, the
stored conflicts and dead letters, and the per-SKU states in memory or as stored.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from types import MappingProxyType

from edge_runtime.store.stock import SkuState, StockState


class LedgerReads:
    """The ledger's reads, each under its lock and after any failed write's SKUs are read back.

    A part of :class:`edge_runtime.store.ledger.Ledger` (which sets the attributes below).

    >>> import os, tempfile
    >>> from edge_runtime.store.ledger import Ledger
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ledger = Ledger(os.path.join(tmp.name, "l.sqlite"), "S1")
    >>> ev = {"event_id": "r1", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 5,
    ...       "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
    >>> _ = ledger.ingest_raw([ev])
    >>> ledger.stock("A").on_hand, ledger.stock("B"), ledger.sku_count(), ledger.event_count()
    (5, None, 1, 1)
    >>> ledger.close(); tmp.cleanup()
    """

    _conn: sqlite3.Connection
    _lock: threading.RLock
    safety_buffer: int
    _clock_us: int
    _states: dict[str, SkuState]

    @property
    def clock_us(self) -> int:
        """The ledger clock: the latest event time folded (microseconds since the epoch)."""
        return self._clock_us

    def stock(self, sku: str, as_of_us: int | None = None) -> StockState | None:
        """The SKU's state, with confidence as of ``as_of_us`` (default: the ledger clock)."""
        with self._lock:
            self._settle()
            s = self._states.get(sku)
            if s is None:
                return None
            return StockState.of(s, self.safety_buffer, as_of_us or self._clock_us)

    def stocks(self, offset: int = 0, limit: int = 100, as_of_us: int | None = None):
        """States of SKUs in SKU order, a page at a time (``list[StockState]``)."""
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must be >= 0, got {offset}, {limit}")
        with self._lock:
            self._settle()
            skus = [
                r[0]
                for r in self._conn.execute(
                    "SELECT sku FROM stock ORDER BY sku LIMIT ? OFFSET ?", (limit, offset)
                )
            ]
            as_of = as_of_us or self._clock_us
            return [StockState.of(self._states[k], self.safety_buffer, as_of) for k in skus]

    def sku_count(self) -> int:
        return len(self._states)

    def event_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM events").fetchone()[0]

    def conflicts(self, after_id: int = 0, limit: int = 100) -> list[dict]:
        """Stored conflict records with ``id > after_id``, oldest first."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT * FROM conflicts WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur]

    def dead_letters(self, limit: int = 100) -> list[dict]:
        """The newest rejected payloads with their reasons, newest first."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,)
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur]

    def states(self) -> dict[str, SkuState]:
        """A copy of the in-memory state of every SKU."""
        with self._lock:
            self._settle()
            return {k: s.copy() for k, s in self._states.items()}

    def folded_states(self) -> Mapping[str, SkuState]:
        """The live in-memory state of every SKU, read-only and not copied: for a
        ``before_commit`` hook (it runs under the ledger's lock), where the SKUs of the open
        batch are already folded and every other SKU is as committed."""
        return MappingProxyType(self._states)
