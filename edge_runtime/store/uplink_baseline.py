"""What the uplink last reported per SKU, kept in the ledger's file beside the outbox.

The uplink (``edge_runtime.transport.uplink``) sends each window's change per SKU against this
baseline. The new baseline is written in the transaction that stores the window's message, so a
crash neither loses nor repeats a delta.

>>> import sqlite3
>>> from edge_runtime.store.stock import SkuState, StockState
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> table = UplinkBaselineTable(conn)
>>> table.save(conn, [StockState.of(SkuState("A", on_hand=7, events=2, last_us=0), 0, 0)])
>>> table.load()
{'A': (7.0, 0.0, 2)}
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from edge_runtime.store.stock import StockState

SCHEMA = """
CREATE TABLE IF NOT EXISTS uplink_baseline (
    sku TEXT PRIMARY KEY, on_hand REAL NOT NULL, reserved REAL NOT NULL, events INTEGER NOT NULL
);
"""
# In place (one page per SKU), not INSERT OR REPLACE (a delete and an insert under a new rowid:
# three pages), in the commit of every uplink window.
_UPSERT = (
    "INSERT INTO uplink_baseline VALUES (?, ?, ?, ?) ON CONFLICT (sku) DO UPDATE"
    " SET on_hand = excluded.on_hand, reserved = excluded.reserved, events = excluded.events"
)

Baseline = tuple[float, float, int]  # on_hand, reserved, events as last sent


class UplinkBaselineTable:
    """The ``uplink_baseline`` table: SKU -> (on_hand, reserved, events) as last sent.

    The ledger creates it with its other tables; creating it here too (idempotent) lets the
    uplink stand on an outbox's file alone.

    >>> import sqlite3
    >>> from edge_runtime.store.stock import SkuState, StockState
    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> table = UplinkBaselineTable(conn)
    >>> for on_hand in (7, 5):  # the second window's state replaces the first as the baseline
    ...     state = SkuState("A", on_hand=on_hand, events=2, last_us=0)
    ...     table.save(conn, [StockState.of(state, 0, 0)])
    >>> table.load()
    {'A': (5.0, 0.0, 2)}
    """

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        conn.executescript(SCHEMA)

    def load(self) -> dict[str, Baseline]:
        """The baseline as committed."""
        return {
            sku: (on_hand, reserved, events)
            for sku, on_hand, reserved, events in self._conn.execute(
                "SELECT sku, on_hand, reserved, events FROM uplink_baseline"
            )
        }

    def save(self, conn: sqlite3.Connection, states: Iterable[StockState]) -> None:
        """Make ``states`` the baseline of their SKUs, on ``conn`` inside its transaction."""
        conn.executemany(_UPSERT, [(s.sku, s.on_hand, s.reserved, s.events) for s in states])
