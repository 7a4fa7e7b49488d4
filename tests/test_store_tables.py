"""Every table of the gateway's state file is defined in ``edge_runtime.store`` and created by the
ledger; a file whose tables their owners created on first use (as older gateways did) opens
unchanged; no SQL runs in the transport or decision rooms."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from edge_runtime.store.alert_episode_table import AlertEpisodeTable
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.ledger_migrations import SCHEMA_VERSION
from edge_runtime.store.outbox import Outbox
from edge_runtime.store.stock import SkuState, StockState
from edge_runtime.store.uplink_baseline import UplinkBaselineTable
from edge_runtime.store.uplink_cursor import UplinkCursor

ROOT = Path(__file__).resolve().parents[1] / "edge_runtime"
KEPT_BESIDE_THE_LEDGER = {"outbox", "alert_episodes", "uplink_baseline", "jetstream_cursor"}
# What older gateways wrote, each table created by its owner on first use.
OLDER_DEFINITIONS = [
    "CREATE TABLE IF NOT EXISTS outbox (\n    seq INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    message_id TEXT NOT NULL UNIQUE,\n    kind TEXT NOT NULL,\n    sku TEXT,\n"
    "    topic TEXT NOT NULL,\n    payload BLOB NOT NULL,\n"
    "    retain INTEGER NOT NULL DEFAULT 0,\n    created_at REAL NOT NULL,\n    sent_at REAL\n)",
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(seq) WHERE sent_at IS NULL",
    "CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, seq)",
    "CREATE TABLE IF NOT EXISTS alert_episodes (\n    sku TEXT PRIMARY KEY,\n"
    "    probability REAL NOT NULL\n)",
    "CREATE TABLE IF NOT EXISTS uplink_baseline (\n    sku TEXT PRIMARY KEY, on_hand REAL NOT NULL,"
    " reserved REAL NOT NULL, events INTEGER NOT NULL\n)",
    "CREATE TABLE IF NOT EXISTS jetstream_cursor (name TEXT PRIMARY KEY, seq INTEGER)",
]
# Every room above the store reaches the state file through it.
NO_SQL_IN = ("transport", "decide", "forecast", "ingest", "watch")


def tables(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))


def test_the_ledger_creates_every_table_the_gateway_keeps_in_its_file(tmp_path):
    path = tmp_path / "ledger.sqlite"
    Ledger(path, "S1").close()
    assert set(tables(path)) >= KEPT_BESIDE_THE_LEDGER


def test_a_file_whose_owners_created_their_tables_opens_unchanged(tmp_path):
    path = tmp_path / "ledger.sqlite"
    Ledger(path, "S1").close()
    with sqlite3.connect(path) as conn:  # an older gateway's file: same schema, rows kept
        for name in KEPT_BESIDE_THE_LEDGER:
            conn.execute(f"DROP TABLE {name}")
        for ddl in OLDER_DEFINITIONS:
            conn.execute(ddl)
        conn.execute("INSERT INTO alert_episodes VALUES ('A', 0.7)")
        conn.execute("INSERT INTO uplink_baseline VALUES ('A', 5, 1, 3)")
        conn.execute("INSERT INTO jetstream_cursor VALUES ('hub', 17)")
        conn.execute(
            "INSERT INTO outbox (message_id, kind, topic, payload, created_at) "
            "VALUES ('m1', 'state', 'shelfcast/S1/state', X'7B7D', 0)"
        )
    before = tables(path)
    ledger = Ledger(path, "S1")
    cursor = UplinkCursor(str(path))
    box = Outbox(path)
    try:
        assert [row.message_id for row in box.pending(10)] == ["m1"]
        assert AlertEpisodeTable(ledger.connection).load() == {"A": 0.7}
        assert UplinkBaselineTable(ledger.connection).load() == {"A": (5.0, 1.0, 3)}
        assert cursor.load() == 17
        meta = dict(ledger.connection.execute("SELECT key, value FROM meta"))
        assert meta["schema"] == SCHEMA_VERSION
    finally:
        box.close()
        cursor.close()
        ledger.close()
    assert tables(path) == before


def test_the_tables_write_what_they_read_back(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, "S1")
    try:
        conn = ledger.connection
        state = StockState.of(SkuState("B", on_hand=4, reserved=1, events=2, last_us=0), 0, 0)
        UplinkBaselineTable(conn).save(conn, [state])
        assert UplinkBaselineTable(conn).load() == {"B": (4.0, 1.0, 2)}
    finally:
        ledger.close()
    cursor = UplinkCursor(str(path))
    cursor.save(9)
    cursor.close()
    assert UplinkCursor(str(path)).load() == 9


def test_no_sql_runs_in_the_transport_and_decision_rooms():
    sql = re.compile(r"\.execute(many|script)?\(")
    found = [
        str(p.relative_to(ROOT))
        for room in NO_SQL_IN
        for p in sorted((ROOT / room).glob("*.py"))
        if sql.search(p.read_text())
    ]
    assert found == [], f"SQL outside edge_runtime/store: {found}"


def test_the_uplink_baseline_is_updated_in_place(tmp_path):
    def state(on_hand: int) -> StockState:
        return StockState.of(SkuState("A", on_hand=on_hand, events=1, last_us=0), 0, 0)

    conn = sqlite3.connect(tmp_path / "b.sqlite", isolation_level=None)
    table = UplinkBaselineTable(conn)
    table.save(conn, [state(5)])
    rowid = conn.execute("SELECT rowid FROM uplink_baseline").fetchone()
    table.save(conn, [state(4)])
    assert conn.execute("SELECT rowid FROM uplink_baseline").fetchone() == rowid
    assert table.load() == {"A": (4.0, 0.0, 1)}
