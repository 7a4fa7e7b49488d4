"""What a live view follows in the ledger file: alerts after a point, and whether events arrived.

Both reads take an open SQLite connection to the gateway's ``ledger.sqlite`` (the outbox shares
the file), so every runtime adapter answers them the same way, whether it owns the ledger or
attaches read-only. Positions are the outbox's ``seq``: strictly increasing, so a client that
remembers the last one it saw resumes without gaps or repeats.

>>> import sqlite3
>>> from edge_runtime.store.outbox import Outbox
>>> conn = sqlite3.connect(":memory:")
>>> Outbox.create_schema(conn)
>>> alerts_after(conn, None, 10), last_event_seq(conn)
([], 0)
"""

from __future__ import annotations

import sqlite3
from typing import get_args

from api.schemas import AlertKind
from edge_runtime.store.outbox import plain_payload

ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)
_IN_KINDS = ",".join("?" * len(ALERT_KINDS))


def alerts_after(
    conn: sqlite3.Connection, after_seq: int | None, limit: int
) -> list[tuple[int, bytes]]:
    """``(seq, JSON)`` of alert and conflict messages after ``after_seq``, oldest first, at most
    ``limit``; with ``after_seq=None``, the newest ``limit`` of them (a fresh view's backlog)."""
    kinds = f"kind IN ({_IN_KINDS})"
    try:
        if after_seq is None:
            sql = f"SELECT seq, payload FROM outbox WHERE {kinds} ORDER BY seq DESC LIMIT ?"
            rows = conn.execute(sql, (*ALERT_KINDS, limit)).fetchall()[::-1]
        else:
            sql = f"SELECT seq, payload FROM outbox WHERE {kinds} AND seq > ? ORDER BY seq LIMIT ?"
            rows = conn.execute(sql, (*ALERT_KINDS, after_seq, limit)).fetchall()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):  # no gateway has written this file's outbox yet
            return []
        raise
    return [(seq, plain_payload(bytes(payload))) for seq, payload in rows]


def last_event_seq(conn: sqlite3.Connection) -> int:
    """The ledger's newest event position (0 when empty): it moves whenever stock may have."""
    try:
        row = conn.execute("SELECT max(seq) FROM events").fetchone()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return 0
        raise
    return row[0] or 0
