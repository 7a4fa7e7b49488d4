"""The outbox as the hub link reads it: rows of the kinds it forwards after its cursor, its
backlog, and where the stock messages sit (the hub orders a store's stock deltas by them).

Read on the link's own connection (``edge_runtime.store.uplink_cursor``); a file whose gateway
has not created the outbox yet reads as empty.

>>> import sqlite3
>>> from edge_runtime.store.outbox import Outbox
>>> conn = sqlite3.connect(":memory:")
>>> Outbox.create_schema(conn)
>>> rows_after(conn, 0, ("uplink",), 10), backlog_after(conn, 0, ("uplink",))
([], (0, None))
>>> last_stock_seq_before(conn, 9)
0
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

STOCK_KIND = "uplink"  # the outbox kind of the windowed stock deltas (``UplinkDeltas``)


class ForwardRow(NamedTuple):
    """One outbox row to forward.

    >>> import sqlite3
    >>> from edge_runtime.messages import GatewayState
    >>> from edge_runtime.store.outbox import Outbox
    >>> box = Outbox(":memory:")
    >>> _ = box.put([GatewayState(store_id="S1", status="online", model_version="m")])
    >>> [(r.seq, r.kind) for r in rows_after(box.connection, 0, ("state",), 10)]
    [(1, 'state')]
    >>> box.close()
    """

    seq: int
    message_id: str
    kind: str
    payload: bytes
    created_at: float


def _marks(kinds: Sequence[str]) -> str:
    return ",".join("?" * len(kinds))


def rows_after(
    conn: sqlite3.Connection, cursor: int, kinds: Sequence[str], limit: int
) -> list[ForwardRow]:
    """Up to ``limit`` rows of ``kinds`` after position ``cursor``, in outbox order."""
    sql = (
        "SELECT seq, message_id, kind, payload, created_at FROM outbox"
        f" WHERE seq > ? AND kind IN ({_marks(kinds)}) ORDER BY seq LIMIT ?"
    )
    try:
        return [ForwardRow(*r) for r in conn.execute(sql, (cursor, *kinds, limit))]
    except sqlite3.OperationalError as err:  # the gateway has not created the outbox yet
        if "no such table" in str(err):
            return []
        raise


def backlog_after(
    conn: sqlite3.Connection, cursor: int, kinds: Sequence[str]
) -> tuple[int, float | None]:
    """(rows of ``kinds`` after ``cursor``, ``created_at`` of the oldest of them or None)."""
    sql = (
        f"SELECT count(*), min(created_at) FROM outbox WHERE seq > ? AND kind IN ({_marks(kinds)})"
    )
    n, oldest = conn.execute(sql, (cursor, *kinds)).fetchone()
    return n, oldest


def last_stock_seq_before(conn: sqlite3.Connection, seq: int) -> int:
    """The position of the newest stock message before ``seq`` (0: none)."""
    row = conn.execute(
        "SELECT max(seq) FROM outbox WHERE kind = ? AND seq < ?", (STOCK_KIND, seq)
    ).fetchone()
    return row[0] or 0


def top_seq(conn: sqlite3.Connection) -> int:
    """The highest outbox position written so far (0: none, or no outbox yet)."""
    try:
        return conn.execute("SELECT max(seq) FROM outbox").fetchone()[0] or 0
    except sqlite3.OperationalError as err:  # the gateway has not created the outbox yet
        if "no such table" in str(err):
            return 0
        raise
