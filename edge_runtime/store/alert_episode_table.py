"""Which SKUs are under a stock-out alert, kept in the ledger's file beside the outbox.

The stock-out monitor (``edge_runtime.decide.stockout.StockoutMonitor``) publishes a SKU when its
probability crosses the threshold and then only on a large enough move, until it clears. That
state lived in memory only: after a restart the gateway re-derived it from the forecasts of the
moment (River's correction starts afresh, so they differ), re-opened episodes it had already
published, and the consumer got the same alert again under a new ``message_id``. The changes are
therefore written in the ingest transaction that made them (a rollback drops them with the
alerts) and read back at start-up and after a rollback.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> episodes = AlertEpisodeTable(conn)
>>> episodes.save(conn, {"A": 0.62, "B": 0.9}); episodes.save(conn, {"B": None})
>>> episodes.load()
{'A': 0.62}
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_episodes (
    sku TEXT PRIMARY KEY,
    probability REAL NOT NULL
);
"""


class AlertEpisodeTable:
    """The ``alert_episodes`` table: SKU -> last published stock-out probability (open episodes).

    The ledger creates it with its other tables; creating it here too (idempotent) lets the
    table stand on a bare connection.

    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> table = AlertEpisodeTable(conn)
    >>> conn.execute("BEGIN"); table.save(conn, {"A": 0.7}); conn.rollback()  # doctest: +ELLIPSIS
    <sqlite3.Cursor object at ...>
    >>> table.load()  # the transaction rolled back, and the episode with it
    {}
    """

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        conn.execute(SCHEMA)

    def save(self, conn: sqlite3.Connection, changes: Mapping[str, float | None]) -> None:
        """Write ``changes`` (None: the episode closed) on ``conn``, inside its transaction."""
        opened = [(sku, p) for sku, p in changes.items() if p is not None]
        closed = [(sku,) for sku, p in changes.items() if p is None]
        if opened:
            conn.executemany(
                "INSERT INTO alert_episodes (sku, probability) VALUES (?, ?) "
                "ON CONFLICT(sku) DO UPDATE SET probability = excluded.probability",
                opened,
            )
        if closed:
            conn.executemany("DELETE FROM alert_episodes WHERE sku = ?", closed)

    def load(self) -> dict[str, float]:
        """The open episodes as committed."""
        return dict(self._conn.execute("SELECT sku, probability FROM alert_episodes"))
