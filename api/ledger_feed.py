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
from edge_runtime.store import ledger_queries
from edge_runtime.store.outbox import plain_payload

ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)


def alerts_after(
    conn: sqlite3.Connection, after_seq: int | None, limit: int
) -> list[tuple[int, bytes]]:
    """``(seq, JSON)`` of alert and conflict messages after ``after_seq``, oldest first, at most
    ``limit``; with ``after_seq=None``, the newest ``limit`` of them (a fresh view's backlog)."""
    rows = ledger_queries.outbox_after(conn, ALERT_KINDS, after_seq, limit)
    return [(seq, plain_payload(payload)) for seq, payload in rows]


def last_event_seq(conn: sqlite3.Connection) -> int:
    """The ledger's newest event position (0 when empty): it moves whenever stock may have."""
    return ledger_queries.last_event_seq(conn)
