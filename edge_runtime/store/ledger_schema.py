"""The ledger's tables (events, stock, conflicts, dead letters) and the statements that write
and read them: one definition, used by ``edge_runtime.store.ledger``.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:"); conn.executescript(SCHEMA) and None
>>> sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
['conflicts', 'dead_letters', 'events', 'meta', 'stock']
"""

from __future__ import annotations

from edge_runtime.store.stock import STATE_FIELDS

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    type TEXT NOT NULL,
    qty NOT NULL,
    ts_us INTEGER NOT NULL,
    event_time TEXT NOT NULL,
    source TEXT NOT NULL,
    order_id TEXT,
    unit_price REAL,
    reason TEXT,
    received_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stock ({", ".join(STATE_FIELDS)}, PRIMARY KEY (sku));
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    order_id TEXT,
    requested INTEGER, granted INTEGER, shortfall INTEGER, on_hand INTEGER, reserved INTEGER,
    ts_us INTEGER NOT NULL,
    detected_us INTEGER NOT NULL,
    UNIQUE (sku, event_id, kind)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    received_us INTEGER NOT NULL,
    source TEXT,
    field TEXT,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    batch_index INTEGER
);
"""

INSERT_EVENT = (
    "INSERT INTO events (seq, event_id, sku, type, qty, ts_us, event_time, source,"
    " order_id, unit_price, reason, received_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
# An update in place, not INSERT OR REPLACE: a replace deletes the row and inserts it again under
# a new rowid, which writes the old page, the table's last page and the key index (three pages
# into the WAL, then fsynced, for every changed SKU of every commit) where this writes one.
UPSERT_STOCK = (
    f"INSERT INTO stock VALUES ({', '.join('?' * len(STATE_FIELDS))}) ON CONFLICT (sku) DO UPDATE"
    f" SET {', '.join(f'{f} = excluded.{f}' for f in STATE_FIELDS[1:])}"
)
INSERT_CONFLICT = (
    "INSERT OR IGNORE INTO conflicts (sku, event_id, kind, order_id, requested, granted,"
    " shortfall, on_hand, reserved, ts_us, detected_us) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_DEAD = (
    "INSERT INTO dead_letters (received_us, source, field, reason, raw, batch_index)"
    " VALUES (?,?,?,?,?,?)"
)
FOLD_ROWS = "SELECT type, qty, ts_us, event_id, order_id FROM events WHERE seq IN ({})"
# What an event claims: equal for a true duplicate (event_time is compared as an instant).
CONTENT = ("sku", "type", "qty", "ts_us", "source", "order_id", "unit_price", "reason")
WINDOW_IDS = "SELECT seq, event_id FROM events WHERE seq >= ? AND seq < ?"
RANGE_CONTENT = f"SELECT event_id, {', '.join(CONTENT)} FROM events WHERE seq >= ? AND seq <= ?"
SEQ_CONTENT = f"SELECT event_id, {', '.join(CONTENT)} FROM events WHERE seq IN ({{}})"
