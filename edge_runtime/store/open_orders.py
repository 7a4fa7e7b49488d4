"""Open replenishment orders, kept in the ledger's file in a table of their own.

The open-order rule (no second trigger for a SKU while its order is open; a receipt closes it,
``edge_runtime.decide.replenishment``) needs to survive a restart and a rolled-back transaction. The
orders opened, changed and closed by a transaction's decisions are written in that transaction
(a rollback drops them with the triggers that opened them) and read back at start-up and after a
rollback: one indexed table, not a parse of every replenishment message in the outbox.

>>> import sqlite3
>>> from edge_runtime.store.ledger_migrations import TABLES
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> _ = conn.executescript(TABLES)
>>> book = OpenOrderTable(conn)
>>> book.save(conn, {"A": (24.0, None), "B": (6.0, "PO-7")}); book.save(conn, {"A": None})
>>> book.load()
{'B': (6.0, 'PO-7')}
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

OrderRow = tuple[float, str | None]  # quantity, purchase-order id (None until one is assigned)


class OpenOrderTable:
    """The ``open_orders`` table (created by the ledger): SKU -> its open order.

    >>> import sqlite3
    >>> from edge_runtime.store.ledger_migrations import TABLES
    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> _ = conn.executescript(TABLES)
    >>> book = OpenOrderTable(conn)
    >>> book.save(conn, {"A": (24.0, None)}); book.save(conn, {"A": (24.0, "PO-8")})  # id came back
    >>> book.load()
    {'A': (24.0, 'PO-8')}
    """

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def save(self, conn: sqlite3.Connection, changes: Mapping[str, OrderRow | None]) -> None:
        """Write ``changes`` (None: the order closed) on ``conn``, inside its transaction."""
        opened = [(sku, q, order_id) for sku, c in changes.items() if c is not None
                  for q, order_id in (c,)]  # fmt: skip
        closed = [(sku,) for sku, c in changes.items() if c is None]
        if opened:
            conn.executemany("INSERT OR REPLACE INTO open_orders VALUES (?, ?, ?)", opened)
        if closed:
            conn.executemany("DELETE FROM open_orders WHERE sku = ?", closed)

    def load(self) -> dict[str, OrderRow]:
        """The open orders as committed."""
        rows = self._conn.execute("SELECT sku, quantity, order_id FROM open_orders")
        return {sku: (float(q), order_id) for sku, q, order_id in rows}
