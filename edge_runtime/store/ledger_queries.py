"""Read-only queries on a gateway's state file, for whoever reads it beside the ledger's owner:
the API over another process's state directory, a live view following the outbox. Each takes
an open connection (the caller holds its own lock); only SQL that reads lives here, so the
statements against the file stay in ``edge_runtime.store``.

Stock rows are as stored (the ``stock`` table is current after every commit); outbox payloads
come as stored (gzip for the uplink: ``edge_runtime.store.outbox.plain_payload`` reads them).

>>> import os, tempfile
>>> from edge_runtime.store.ledger import Ledger
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "ledger.sqlite")
>>> Ledger(path, "S1").close()
>>> conn = open_read_only(path)
>>> ledger_meta(conn)["store_id"], stored_sku_count(conn), last_event_seq(conn)
('S1', 0, 0)
>>> outbox_payloads(conn, None, None, 10), undelivered_count(conn)
([], 0)
>>> conn.close(); tmp.cleanup()
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from edge_runtime.store.stock import SkuState


def open_read_only(path: str | Path, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """A connection that can never change the file (SQLite's ``mode=ro``), waiting up to
    ``busy_timeout_ms`` for the owner's writes."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return conn


def _missing_table(err: sqlite3.OperationalError) -> bool:
    """The file has no such table yet: its gateway has not written that part."""
    return "no such table" in str(err)


def ledger_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """The ledger's identity and settings (``store_id``, ``safety_buffer``, ``schema``, ...)."""
    return dict(conn.execute("SELECT key, value FROM meta"))


def stored_stock(conn: sqlite3.Connection, sku: str) -> SkuState | None:
    """The SKU's stored state, None when the ledger has never seen it."""
    row = conn.execute("SELECT * FROM stock WHERE sku = ?", (sku,)).fetchone()
    return SkuState(*row) if row is not None else None


def stored_stock_page(conn: sqlite3.Connection, offset: int, limit: int) -> list[SkuState]:
    """Stored states in SKU order, ``limit`` of them from ``offset``."""
    cur = conn.execute("SELECT * FROM stock ORDER BY sku LIMIT ? OFFSET ?", (limit, offset))
    return [SkuState(*row) for row in cur]


def stored_sku_count(conn: sqlite3.Connection) -> int:
    """How many SKUs the ledger holds."""
    return conn.execute("SELECT count(*) FROM stock").fetchone()[0]


def latest_event_us(conn: sqlite3.Connection) -> int | None:
    """The ledger clock as stored: the latest event time folded (µs), None before any event."""
    return conn.execute("SELECT max(last_us) FROM stock WHERE events > 0").fetchone()[0]


def outbox_payloads(
    conn: sqlite3.Connection, kind: str | None, sku: str | None, limit: int
) -> list[bytes]:
    """Stored payloads of the newest outgoing messages, newest first, of one ``kind`` and
    ``sku`` when given; ``[]`` while the file has no outbox."""
    where = " AND ".join(c for c, v in (("kind = ?", kind), ("sku = ?", sku)) if v)
    args = tuple(v for v in (kind, sku) if v)
    sql = (
        f"SELECT payload FROM outbox {'WHERE ' + where if where else ''} ORDER BY seq DESC LIMIT ?"
    )
    try:
        return [bytes(p) for (p,) in conn.execute(sql, (*args, limit))]
    except sqlite3.OperationalError as err:
        if _missing_table(err):
            return []
        raise


def undelivered_count(conn: sqlite3.Connection) -> int | None:
    """Messages the outbox still holds for the broker; None while the file has no outbox."""
    try:
        return conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
    except sqlite3.OperationalError as err:
        if _missing_table(err):
            return None
        raise


def outbox_after(
    conn: sqlite3.Connection, kinds: Sequence[str], after_seq: int | None, limit: int
) -> list[tuple[int, bytes]]:
    """``(seq, stored payload)`` of messages of ``kinds`` after outbox position ``after_seq``,
    oldest first, at most ``limit``; with ``after_seq=None`` the newest ``limit`` of them.
    ``[]`` while the file has no outbox."""
    marks = f"kind IN ({','.join('?' * len(kinds))})"
    try:
        if after_seq is None:
            sql = f"SELECT seq, payload FROM outbox WHERE {marks} ORDER BY seq DESC LIMIT ?"
            rows = conn.execute(sql, (*kinds, limit)).fetchall()[::-1]
        else:
            sql = f"SELECT seq, payload FROM outbox WHERE {marks} AND seq > ? ORDER BY seq LIMIT ?"
            rows = conn.execute(sql, (*kinds, after_seq, limit)).fetchall()
    except sqlite3.OperationalError as err:
        if _missing_table(err):
            return []
        raise
    return [(seq, bytes(payload)) for seq, payload in rows]


def last_event_seq(conn: sqlite3.Connection) -> int:
    """The log's newest event position (0 when empty or not yet created)."""
    try:
        row = conn.execute("SELECT max(seq) FROM events").fetchone()
    except sqlite3.OperationalError as err:
        if _missing_table(err):
            return 0
        raise
    return row[0] or 0
