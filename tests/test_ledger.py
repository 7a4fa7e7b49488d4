"""The ledger against a real SQLite file: rules, idempotency, late events, contention,
dead letters, durability across reopen, and the before_commit hook."""

from __future__ import annotations

import sqlite3

import pytest

from edge_runtime.store.ledger import Ledger, LedgerError

STORE = "S1"
_seq = iter(range(10**9))


def ev(kind, qty, minute, sku="A", event_id=None, **extra) -> dict:
    d = {
        "event_id": event_id or f"e{next(_seq)}",
        "store_id": STORE,
        "sku": sku,
        "type": kind,
        "qty": qty,
        "event_time": f"2026-01-05T10:{minute:02d}:00+00:00",
        "source": {"cycle_count": "count", "reservation": "ecom"}.get(kind, "pos"),
    }
    if kind in ("reservation", "reservation_release", "fulfilment"):
        d["order_id"] = extra.pop("order_id", "o1")
    d.update(extra)
    return d


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.sqlite", STORE)
    yield led
    led.close()


def test_rules_per_event_type(ledger):
    ledger.ingest_raw(
        [
            ev("receipt", 10, 0),
            ev("sale", 3, 1),
            ev("return", 1, 2),
            ev("void", 1, 3),
            ev("transfer_in", 4, 4),
            ev("transfer_out", 2, 5),
            ev("damage", 1, 6),
            ev("adjustment", -1, 7),
            ev("reservation", 2, 8),
            ev("reservation_release", 1, 9),
            ev("fulfilment", 1, 10),
        ]
    )
    s = ledger.stock("A")
    # 10 - 3 + 1 + 1 + 4 - 2 - 1 - 1 - 1(fulfilled) = 8; reserved 2 - 1 - 1 = 0
    assert (s.on_hand, s.reserved, s.sold, s.received, s.damaged) == (8, 0, 1, 14, 1)
    assert s.available == 8 and s.events == 11
    assert ledger.verify() == []


def test_duplicates_change_nothing(ledger):
    batch = [ev("receipt", 5, 0, event_id="r"), ev("sale", 2, 1, event_id="s")]
    first = ledger.ingest_raw(batch)
    again = ledger.ingest_raw(batch + batch)
    assert (first.accepted, first.duplicates) == (2, 0)
    assert (again.accepted, again.duplicates, again.changed_skus) == (0, 4, [])
    assert ledger.stock("A").on_hand == 3
    assert ledger.event_count() == 2


def test_cycle_count_sets_on_hand_and_records_shrink(ledger):
    ledger.ingest_raw([ev("receipt", 10, 0), ev("sale", 2, 1), ev("cycle_count", 5, 2)])
    s = ledger.stock("A")
    assert (s.on_hand, s.shrink, s.gain) == (5, 3, 0)
    assert s.last_count_time.startswith("2026-01-05T10:02")
    ledger.ingest_raw([ev("cycle_count", 7, 3)])
    assert (ledger.stock("A").on_hand, ledger.stock("A").gain) == (7, 2)


def test_late_sale_before_a_count_is_not_double_corrected(ledger):
    ledger.ingest_raw([ev("receipt", 10, 0), ev("cycle_count", 8, 5)])
    assert (ledger.stock("A").on_hand, ledger.stock("A").shrink) == (8, 2)
    # A sale at 10:03 (before the count) arrives late: the count already saw its effect.
    r = ledger.ingest_raw([ev("sale", 2, 3)])
    s = ledger.stock("A")
    assert r.changed_skus == ["A"]
    assert (s.on_hand, s.shrink, s.sold) == (8, 0, 2)  # the 2 "missing" units were this sale
    # A sale after the count still counts.
    ledger.ingest_raw([ev("sale", 1, 6)])
    assert ledger.stock("A").on_hand == 7
    assert ledger.verify() == []


def test_reservation_beyond_available_is_short_and_recorded(tmp_path):
    with Ledger(tmp_path / "l.sqlite", STORE, safety_buffer=1) as led:
        led.ingest_raw([ev("receipt", 3, 0)])
        r = led.ingest_raw([ev("reservation", 5, 1, order_id="web-7")])
        (c,) = r.conflicts
        assert (c.kind, c.order_id, c.requested, c.granted, c.shortfall) == (
            "reservation_short",
            "web-7",
            5,
            2,
            3,
        )
        s = led.stock("A")
        assert (s.reserved, s.available) == (2, 0)
        assert led.conflicts()[0]["kind"] == "reservation_short"


def test_last_unit_contention_sale_wins_and_reservation_is_cut(ledger):
    ledger.ingest_raw([ev("receipt", 1, 0), ev("reservation", 1, 1, order_id="web-1")])
    r = ledger.ingest_raw([ev("sale", 1, 2)])
    assert [c.kind for c in r.conflicts] == ["reserved_units_gone"]
    s = ledger.stock("A")
    assert (s.on_hand, s.reserved, s.available) == (0, 0, 0)


def test_sale_beyond_book_is_reported_once_and_available_never_negative(ledger):
    r = ledger.ingest_raw([ev("sale", 2, 0), ev("sale", 1, 1)])
    assert [c.kind for c in r.conflicts] == ["sold_beyond_book"]
    s = ledger.stock("A")
    assert s.on_hand == -3 and s.available == 0


def test_dead_letters_keep_reason_and_valid_events_pass(ledger):
    good = ev("receipt", 5, 0)
    r = ledger.ingest_raw([good, ev("sale", -1, 1), {"junk": 1}], source="pos")
    assert (r.accepted, r.rejected) == (1, 2)
    dead = ledger.dead_letters()
    assert {d["field"] for d in dead} == {"qty", "junk"}
    assert all(d["source"] == "pos" and d["raw"] for d in dead)
    ledger.ingest_raw(b"\xff\xfe not json", source="mqtt")
    assert "not valid JSON" in ledger.dead_letters(1)[0]["reason"]
    assert ledger.stock("A").on_hand == 5


def test_sensor_events_are_stored_but_do_not_touch_state(ledger):
    r = ledger.ingest_raw([ev("shelf_units", 4, 0, source="shelf"), ev("rfid_exit", 1, 1)])
    assert r.accepted == 2 and r.changed_skus == []
    assert ledger.stock("A") is None and ledger.event_count() == 2
    assert {e.type for e in r.events} == {"shelf_units", "rfid_exit"}


def test_state_survives_reopen_and_equals_rebuild(tmp_path):
    path = tmp_path / "l.sqlite"
    with Ledger(path, STORE) as led:
        led.ingest_raw([ev("receipt", 9, 0, sku=f"S{i}") for i in range(50)])
        led.ingest_raw([ev("sale", 2, 1, sku="S3"), ev("cycle_count", 4, 2, sku="S4")])
    with Ledger(path, STORE) as led:
        assert led.sku_count() == 50
        assert (led.stock("S3").on_hand, led.stock("S4").shrink) == (7, 5)
        assert led.verify() == []
        assert [s.sku for s in led.stocks(offset=10, limit=3)] == ["S18", "S19", "S2"]


def test_wrong_store_file_is_refused(tmp_path):
    Ledger(tmp_path / "l.sqlite", STORE).close()
    with pytest.raises(LedgerError, match="ledger of store 'S1'"):
        Ledger(tmp_path / "l.sqlite", "S2")


def test_changing_the_safety_buffer_refolds(tmp_path):
    path = tmp_path / "l.sqlite"
    with Ledger(path, STORE) as led:
        led.ingest_raw([ev("receipt", 2, 0), ev("reservation", 2, 1)])
        assert led.stock("A").reserved == 2
    with Ledger(path, STORE, safety_buffer=1) as led:
        assert led.stock("A").reserved == 1
        assert led.verify() == []


def test_before_commit_hook_writes_in_the_same_transaction(ledger):
    ledger.connection.execute("CREATE TABLE side (n INTEGER)")

    def hook(conn: sqlite3.Connection, result) -> None:
        conn.execute("INSERT INTO side VALUES (?)", (result.accepted,))

    ledger.ingest_raw([ev("receipt", 1, 0)], before_commit=hook)
    assert ledger.connection.execute("SELECT n FROM side").fetchall() == [(1,)]

    def failing(conn, result):
        conn.execute("INSERT INTO side VALUES (99)")
        raise RuntimeError("outbox full")

    with pytest.raises(RuntimeError):
        ledger.ingest_raw([ev("receipt", 1, 1, event_id="rolled-back")], before_commit=failing)
    # Nothing of the failed transaction stays: not the event, not the state, not the side row.
    assert ledger.connection.execute("SELECT count(*) FROM side").fetchone() == (1,)
    assert ledger.stock("A").on_hand == 1
    assert ledger.ingest_raw([ev("receipt", 1, 1, event_id="rolled-back")]).accepted == 1
    assert ledger.verify() == []


def test_confidence_decays_with_time_and_discrepancy(ledger):
    ledger.ingest_raw([ev("receipt", 10, 0, sku="good"), ev("cycle_count", 10, 1, sku="good")])
    ledger.ingest_raw([ev("receipt", 10, 0, sku="bad"), ev("cycle_count", 2, 1, sku="bad")])
    ledger.ingest_raw([ev("receipt", 10, 0, sku="never")])
    t = ledger.clock_us
    good, bad, never = (ledger.stock(k, as_of_us=t) for k in ("good", "bad", "never"))
    assert good.confidence == pytest.approx(1.0, abs=1e-6)
    assert bad.confidence < good.confidence
    assert never.confidence <= 0.5
    later = ledger.stock("good", as_of_us=t + 14 * 86_400_000_000)
    assert later.confidence == pytest.approx(0.3679, abs=1e-3)


def test_rollback_restores_in_memory_state_of_touched_and_new_skus(ledger):
    ledger.ingest_raw([ev("receipt", 5, 0, sku="A")])

    def failing(conn, result):
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError):
        ledger.ingest_raw(
            [ev("sale", 2, 1, sku="A"), ev("receipt", 3, 1, sku="B")], before_commit=failing
        )
    assert ledger.stock("A").on_hand == 5 and ledger.stock("B") is None
    assert ledger.verify() == []


def test_a_changed_sku_is_updated_in_place_keeping_its_row(ledger):
    # A replace would re-insert the row under a new rowid: three pages to the WAL (and its
    # fsync) per changed SKU of every commit instead of one; the close's SKU order is rowid's.
    ledger.ingest_raw([ev("receipt", 5, 0, sku="A"), ev("receipt", 5, 0, sku="B")])
    rows = dict(ledger.connection.execute("SELECT sku, rowid FROM stock"))
    ledger.ingest_raw([ev("sale", 1, 1, sku="A")])
    assert dict(ledger.connection.execute("SELECT sku, rowid FROM stock")) == rows
    assert ledger.stock("A").on_hand == 4 and ledger.verify() == []
