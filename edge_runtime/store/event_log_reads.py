"""Reads of the ledger's event log for the state derived from it at start-up: the daily sales
series and the intraday warning's window. The log is the ledger's own table, so the statements
that read it live here beside it; callers get rows in the order the derived state needs them.

>>> import os, tempfile
>>> from edge_runtime.store.ledger import Ledger
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "ledger.sqlite")
>>> Ledger(path, "S1").close()
>>> conn = sqlite3.connect(path)
>>> last_logged_day(conn) is None, list(events_after(conn, 0))
(True, [])
>>> conn.close(); tmp.cleanup()
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

#: What a replayed event carries for the intraday warning, in column order.
WARNING_COLUMNS = "event_id, sku, type, qty, event_time, unit_price, reason"
#: What a replayed event carries for the daily sales series, in column order.
SALES_COLUMNS = "sku, type, qty, event_time, unit_price"


def last_logged_day(conn: sqlite3.Connection) -> str | None:
    """The newest event-time day in the log (``YYYY-MM-DD``), or None while it is empty."""
    row = conn.execute("SELECT max(substr(event_time, 1, 10)) FROM events").fetchone()
    return row[0] if row else None


def day_totals_since(conn: sqlite3.Connection, first_day: str) -> Iterator[tuple]:
    """``(day, sku, type, units, highest unit price)`` per logged day, SKU and event type from
    ``first_day`` on, in day order: a start-up rebuild reads days, not millions of events."""
    yield from conn.execute(
        "SELECT substr(event_time, 1, 10) AS day, sku, type, sum(qty),"
        " max(CASE WHEN unit_price IS NOT NULL THEN unit_price END) FROM events"
        " WHERE substr(event_time, 1, 10) >= ? GROUP BY day, sku, type ORDER BY day",
        (first_day,),
    )


def _chunks(cur: sqlite3.Cursor, chunk: int) -> Iterator[list[tuple]]:
    while rows := cur.fetchmany(chunk):
        yield rows


def events_since_day(
    conn: sqlite3.Connection, first_day: str, chunk: int = 5000
) -> Iterator[list[tuple]]:
    """Logged events (``WARNING_COLUMNS``) whose event-time day is ``first_day`` or later, in
    commit order, ``chunk`` rows at a time."""
    cur = conn.execute(
        f"SELECT {WARNING_COLUMNS} FROM events WHERE substr(event_time, 1, 10) >= ? ORDER BY seq",
        (first_day,),
    )
    return _chunks(cur, chunk)


def events_after(conn: sqlite3.Connection, after_seq: int, chunk: int = 5000) -> Iterator[list]:
    """Logged events (``SALES_COLUMNS``) committed after log position ``after_seq``, in commit
    order, ``chunk`` rows at a time: what a snapshot taken at ``after_seq`` has not seen."""
    cur = conn.execute(
        f"SELECT {SALES_COLUMNS} FROM events WHERE seq > ? ORDER BY seq", (after_seq,)
    )
    return _chunks(cur, chunk)
