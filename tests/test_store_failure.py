"""A write the store refuses leaves memory exactly at the last commit, on real SQLite files:
whether SQLite rolled the transaction back by itself (forced with a ``RAISE(ROLLBACK)``
trigger, as SQLite does on a full disk) or on a real full filesystem (a small tmpfs)."""

from __future__ import annotations

import sqlite3

import pytest

from edge_runtime.messages import GatewayState
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.outbox import Outbox
from edge_runtime.store.store_failure import StoreError, is_store_failure
from tests.small_disk import fill
from tests.test_ledger import STORE, ev


def refuse_writes(conn: sqlite3.Connection, table: str, event: str = "INSERT") -> None:
    """Every later write to ``table`` rolls the whole transaction back inside SQLite."""
    conn.execute(
        f"CREATE TRIGGER refuse_{table} BEFORE {event} ON {table} "
        f"BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END"
    )


def allow_writes(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(f"DROP TRIGGER refuse_{table}")


def test_a_commit_sqlite_already_rolled_back_restores_memory(tmp_path):
    """Without the fix, the explicit ROLLBACK raised "no transaction is active", the restore
    never ran and SKU A kept the rolled-back sale in memory (verify() named it)."""
    with Ledger(tmp_path / "l.sqlite", STORE) as led:
        led.ingest_raw([ev("receipt", 10, 1, "A"), ev("receipt", 5, 1, "B")])
        refuse_writes(led.connection, "stock")
        with pytest.raises(StoreError, match="database or disk is full"):
            led.ingest_raw([ev("sale", 3, 2, "A"), ev("receipt", 7, 2, "C")])
        assert not led.connection.in_transaction
        assert led.verify() == []
        assert (led.stock("A").on_hand, led.stock("C"), led.event_count()) == (10, None, 2)
        assert led.health.problem and "disk is full" in led.health.problem
        allow_writes(led.connection, "stock")
        again = led.ingest_raw([ev("sale", 3, 2, "A", event_id="s-A")])
        assert again.accepted == 1 and led.stock("A").on_hand == 7
        assert led.verify() == [] and led.health.problem is None


def test_a_dead_letter_the_store_refuses_is_a_store_error(tmp_path):
    with Ledger(tmp_path / "l.sqlite", STORE) as led:
        refuse_writes(led.connection, "dead_letters")
        with pytest.raises(StoreError):
            led.ingest_raw(b"not json")
        assert led.dead_letters() == [] and led.health.problem is not None


def test_mark_sent_that_sqlite_already_rolled_back_raises_the_store_error(tmp_path):
    """Without the fix the caller saw "cannot rollback - no transaction is active" instead of
    the store's error, and the connection's state was not checked."""
    box = Outbox(tmp_path / "l.sqlite")
    try:
        rows = box.put([GatewayState(store_id=STORE, status="online", model_version="m")])
        refuse_writes(box.connection, "outbox", "UPDATE")
        with pytest.raises(StoreError, match="database or disk is full"):
            box.mark_sent([rows[0].seq])
        assert not box.connection.in_transaction and box.depth() == 1
        allow_writes(box.connection, "outbox")
        assert box.mark_sent([rows[0].seq]) == 1 and box.depth() == 0
    finally:
        box.close()


def test_only_the_events_content_is_not_a_store_failure():
    assert is_store_failure(sqlite3.OperationalError("database or disk is full"))
    assert is_store_failure(sqlite3.IntegrityError("UNIQUE constraint failed: events.seq"))
    assert is_store_failure(sqlite3.DatabaseError("file is not a database"))
    assert not is_store_failure(sqlite3.DataError("string or blob too big"))
    assert not is_store_failure(TypeError("unhashable type: 'dict'"))


def test_a_real_full_disk_stops_the_ledger_and_it_resumes_when_space_returns(small_disk):
    """On a full tmpfs SQLite fails the commit (and may roll back itself); the ledger's memory
    stays at the last commit and the same batch goes in once space is back."""
    led = Ledger(small_disk / "ledger.sqlite", STORE)
    box = Outbox(small_disk / "ledger.sqlite")
    try:
        led.ingest_raw([ev("receipt", 1000, 0, f"K{k}", event_id=f"r{k}") for k in range(200)])
        sent = box.put([GatewayState(store_id=STORE, status="online", model_version="m")])
        filler = fill(small_disk)
        batches = [
            [ev("sale", 1, 1 + n % 50, f"K{k}", event_id=f"b{n}-{k}") for k in range(200)]
            for n in range(40)
        ]
        failed = None
        for n, batch in enumerate(batches):  # the WAL reuses its pages for a while
            try:
                led.ingest_raw(batch)
            except StoreError as err:
                failed = n
                assert "full" in str(err) or "I/O" in str(err)
                break
        assert failed is not None, "the full disk never refused a commit"
        assert led.verify() == []
        assert led.event_count() == 200 + 200 * failed
        assert all(led.stock(f"K{k}").on_hand == 1000 - failed for k in range(200))
        assert led.health.problem is not None
        with pytest.raises(StoreError):  # the outbox's mark, refused too
            for _ in range(50):
                box.mark_sent([sent[0].seq])
                box.put([GatewayState(store_id=STORE, status="online", model_version="m")])
        filler.unlink()
        for batch in batches[failed:]:
            assert led.ingest_raw(batch).accepted == 200
        assert led.verify() == [] and led.health.problem is None
        assert all(led.stock(f"K{k}").on_hand == 1000 - len(batches) for k in range(200))
    finally:
        box.close()
        led.close()
