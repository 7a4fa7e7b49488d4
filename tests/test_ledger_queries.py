"""Read-only queries on a live ledger file answer what the owning Ledger and Outbox hold, and
can never change the file."""

from __future__ import annotations

import sqlite3

import pytest

from edge_runtime.messages import GatewayState, StockoutAlert
from edge_runtime.store import ledger_queries as q
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.outbox import Outbox, plain_payload


def event(i: int, sku: str, kind: str = "receipt", qty: int = 5) -> dict:
    return {"event_id": f"e{i}", "store_id": "S1", "sku": sku, "type": kind, "qty": qty,
            "event_time": f"2026-01-05T08:00:{i:02d}+00:00", "source": "wms"}  # fmt: skip


@pytest.fixture
def files(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite", "S1", safety_buffer=2)
    box = Outbox(ledger.path)
    conn = q.open_read_only(ledger.path)
    yield ledger, box, conn
    conn.close()
    box.close()
    ledger.close()


def test_stock_reads_match_the_owner(files):
    ledger, _, conn = files
    assert q.latest_event_us(conn) is None and q.last_event_seq(conn) == 0
    ledger.ingest_raw([event(i, sku) for i, sku in enumerate("CAB")])
    ledger.ingest_raw([event(3, "A", "sale", 2)])
    assert q.ledger_meta(conn)["safety_buffer"] == "2"
    assert q.stored_stock(conn, "A") == ledger.stored_states()["A"]
    assert q.stored_stock(conn, "nope") is None
    assert [s.sku for s in q.stored_stock_page(conn, 1, 5)] == ["B", "C"]
    assert q.stored_sku_count(conn) == ledger.sku_count() == 3
    assert q.latest_event_us(conn) == ledger.clock_us
    assert q.last_event_seq(conn) == ledger.position()[0] == 4


def test_outbox_reads_in_order_and_by_kind(files):
    _, box, conn = files
    alerts = [StockoutAlert(store_id="S1", sku=s, model_version="m", probability=1.0)
              for s in "ABC"]  # fmt: skip
    rows = box.put([alerts[0], GatewayState(store_id="S1", status="online", model_version="m"),
                    *alerts[1:]])  # fmt: skip
    newest = [plain_payload(p) for p in q.outbox_payloads(conn, "stockout", None, 2)]
    assert newest == [alerts[2].to_json(), alerts[1].to_json()]
    assert q.outbox_payloads(conn, None, "A", 10) == [alerts[0].to_json()]
    seqs = [r.seq for r in rows]
    assert [s for s, _ in q.outbox_after(conn, ["stockout"], None, 2)] == [seqs[2], seqs[3]]
    assert [s for s, _ in q.outbox_after(conn, ["stockout"], seqs[0], 10)] == seqs[2:]
    assert q.undelivered_count(conn) == box.depth() == 4


def test_a_file_without_an_outbox_reads_empty(tmp_path):
    Ledger(tmp_path / "ledger.sqlite", "S1").close()
    rw = sqlite3.connect(tmp_path / "ledger.sqlite")  # as an older gateway left it: no outbox
    rw.execute("DROP TABLE outbox")
    rw.close()
    conn = q.open_read_only(tmp_path / "ledger.sqlite")
    assert q.outbox_payloads(conn, None, None, 5) == [] and q.undelivered_count(conn) is None
    assert q.outbox_after(conn, ["stockout"], None, 5) == []
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM stock")
    conn.close()
