"""The durable outbox on a real SQLite file: order, once-only marking, survival across reopen."""

from __future__ import annotations

import sqlite3

from edge_runtime.messages import GatewayState, StockoutAlert
from edge_runtime.store.outbox import Outbox


def alert(sku, i):
    return StockoutAlert(
        store_id="S1", sku=sku, model_version="m", probability=1.0, evidence={"i": i}
    )


def test_pending_in_order_and_mark_sent_once(tmp_path):
    box = Outbox(tmp_path / "l.sqlite")
    rows = box.put([alert("A", i) for i in range(5)] + [alert("B", 9)])
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert [r.message_id for r in box.pending(100)] == [r.message_id for r in rows]
    assert box.mark_sent([rows[0].seq, rows[1].seq]) == 2
    assert box.mark_sent([rows[0].seq]) == 0  # already sent: nothing changes
    assert [r.seq for r in box.pending(100)] == [r.seq for r in rows[2:]]
    assert [r.seq for r in box.pending(2, after_seq=rows[2].seq)] == [rows[3].seq, rows[4].seq]
    assert box.depth() == 4
    box.close()


def test_survives_reopen_and_joins_a_foreign_transaction(tmp_path):
    path = tmp_path / "l.sqlite"
    box = Outbox(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE ledger (x)")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO ledger VALUES (1)")
    box.put([alert("A", 1)], conn=conn)
    conn.execute("ROLLBACK")  # the ledger change failed: its messages vanish with it
    assert box.depth() == 0
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO ledger VALUES (2)")
    put = box.put([alert("A", 2)], conn=conn)
    conn.execute("COMMIT")
    box.close()
    reopened = Outbox(path)
    assert [r.message_id for r in reopened.pending()] == [put[0].message_id]
    assert reopened.pending()[0].payload == put[0].payload


def test_recent_and_prune(tmp_path):
    box = Outbox(tmp_path / "l.sqlite")
    rows = box.put([alert("A", i) for i in range(10)])
    box.put([GatewayState(store_id="S1", status="online", model_version="m")])
    assert len(box.recent(kind="stockout", sku="A", limit=3)) == 3
    assert b'"kind":"state"' in box.recent(limit=1)[0]
    box.mark_sent([r.seq for r in rows])
    assert box.prune(keep_sent=4) == 6
    assert box.depth() == 1  # the unsent state message is never pruned
    assert len(box.recent(kind="stockout")) == 4


def test_recent_returns_plain_json_for_the_gzip_uplink(tmp_path):
    from datetime import UTC, datetime

    from edge_runtime.messages import UplinkDeltas

    now = datetime.now(UTC)
    box = Outbox(tmp_path / "l.sqlite")
    (row,) = box.put(
        [UplinkDeltas(store_id="S1", model_version="m", window_start=now, window_end=now,
                      events=1, deltas=[("A", 1, 0, 1, 1, 1)])]
    )  # fmt: skip
    assert row.payload[:2] == b"\x1f\x8b"  # compressed on the wire
    assert box.recent(kind="uplink")[0].startswith(b'{"schema":1')
