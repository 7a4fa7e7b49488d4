"""Open replenishment orders live in a table of the ledger's file, written with the trigger that
opened them; an older state directory (schema 1, orders only in the outbox) migrates forward."""

from __future__ import annotations

import sqlite3

import pytest

from edge_runtime.gateway import Gateway
from edge_runtime.store.ledger import Ledger, LedgerError
from edge_runtime.store.ledger_migrations import SCHEMA_VERSION
from tests.test_gateway_model import config, daily_sales, demand_bundle, ev, kinds


def open_an_order(gw: Gateway) -> dict:
    gw.ingest([ev("r", "A", "receipt", 100, 1), *daily_sales("A", 4, range(1, 9))], "seed")
    gw.ingest([ev("big", "A", "sale", 60, 8, 12)], "pos")  # 8 left at ~4 a day: order
    [trigger] = kinds(gw.recent_messages(), "replenishment")
    return trigger


def table(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT sku, quantity, order_id FROM open_orders").fetchall()


def test_an_open_order_is_stored_with_its_trigger_and_survives_without_the_outbox(tmp_path):
    cfg = config(tmp_path, demand_bundle(tmp_path / "bundles" / "col-7"))
    with Gateway(cfg) as gw:
        trigger = open_an_order(gw)
    assert table(cfg.ledger_path) == [("A", trigger["recommended_qty"], None)]
    with sqlite3.connect(cfg.ledger_path) as conn:  # delivered messages pruned meanwhile
        conn.execute("DELETE FROM outbox")
    with Gateway(cfg) as gw:
        assert gw.policy.replenisher.open_orders["A"].quantity == trigger["recommended_qty"]
        gw.ingest([ev("s5", "A", "sale", 1, 8, 17)], "pos")
        assert kinds(gw.recent_messages(), "replenishment") == []  # still open: no second
        gw.ingest([ev("in", "A", "receipt", 30, 8, 18)], "wms")
    assert table(cfg.ledger_path) == []  # the receipt closed it, in its transaction


def test_a_schema_1_state_directory_migrates_its_open_orders_from_the_outbox(tmp_path):
    cfg = config(tmp_path, demand_bundle(tmp_path / "bundles" / "col-7"))
    with Gateway(cfg) as gw:
        trigger = open_an_order(gw)
    with sqlite3.connect(cfg.ledger_path) as conn:  # what schema 1 wrote: no such tables
        conn.execute("DROP TABLE open_orders")
        conn.execute("DROP TABLE stock_base")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    with Gateway(cfg) as gw:
        assert gw.policy.replenisher.open_orders["A"].quantity == trigger["recommended_qty"]
    with sqlite3.connect(cfg.ledger_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
            SCHEMA_VERSION,
        )
    assert table(cfg.ledger_path) == [("A", trigger["recommended_qty"], None)]


def test_a_ledger_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "ledger.sqlite"
    Ledger(path, "S1").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(LedgerError, match="schema '99', which is newer than this code"):
        Ledger(path, "S1")
