"""Retention keeps a gateway's state directory bounded: delivered messages, dead letters and old
events go (the events to compressed daily files), and nothing undelivered or still needed does."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

import pytest

from edge_runtime.config import ConfigError, load_config, with_mqtt
from edge_runtime.gateway import Gateway
from edge_runtime.messages import UplinkDeltas
from edge_runtime.store.event_archive import EventArchive
from edge_runtime.store.outbox import Outbox
from edge_runtime.transport.jetstream_uplink import JetStreamUplink

BOUNDS = {
    "SHELFCAST_INGEST_MAX_LATE_DAYS": "2",
    "SHELFCAST_RETENTION_EVENT_LOG_DAYS": "3",
    "SHELFCAST_RETENTION_ARCHIVE_DAYS": "6",
    "SHELFCAST_RETENTION_OUTBOX_ROWS": "3",
    "SHELFCAST_RETENTION_DEAD_LETTER_ROWS": "2",
}


def config(tmp_path, **env):
    values = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
              "SHELFCAST_MQTT_ENABLED": "false", **BOUNDS, **env}  # fmt: skip
    return load_config(env=values)


def days_of_trade(days=range(1, 11), skus=("A", "B", "C")) -> list[dict]:
    """Each SKU: a receipt of 6 then sales of 3 and 3 every day: out of stock daily."""
    out = []
    for d in days:
        for k, sku in enumerate(skus):
            for i, (kind, qty) in enumerate([("receipt", 6), ("sale", 3), ("sale", 3)]):
                out.append({"event_id": f"{sku}-{d}-{i}", "store_id": "S1", "sku": sku,
                            "type": kind, "qty": qty, "source": "pos",
                            "event_time": f"2026-01-{d:02d}T{10 + i}:{k:02d}:00+00:00"})  # fmt: skip
    return out


def count(path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def logged(path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM events")]


def test_retention_bounds_the_outbox_dead_letters_and_log_and_changes_no_state(tmp_path):
    cfg = config(tmp_path)
    events = days_of_trade()
    with Gateway(cfg) as gw:
        for d in range(10):
            gw.ingest(events[d * 9 : (d + 1) * 9], "pos")
            gw.ingest(b"{not json", "pos")
        before = (gw.ledger.states(), gw.recent_sales("A", 30))
        assert (
            count(cfg.ledger_path, "outbox") > 10 and count(cfg.ledger_path, "dead_letters") == 10
        )
        report = gw.run_retention()
        # Events before day 7, 12:00 (whole hours 3 days behind the clock, day 10 at 12:02).
        assert report.dead_letters == 8 and report.archived == 6 * 9 + 6
        assert count(cfg.ledger_path, "outbox") == 3  # MQTT off: nothing would ever send them
        assert count(cfg.ledger_path, "dead_letters") == 2
        box = EventArchive(tmp_path / "state" / "archive")
        assert len(logged(cfg.ledger_path)) == 3 + 3 * 9
        # The files of days more than 6 days behind the clock are gone too.
        assert box.days() == ["2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07"]
        assert len(list(box.read("2026-01-07"))) == 6
        assert gw.ledger.verify() == [] and (gw.ledger.states(), gw.recent_sales("A", 30)) == before
        gw.ingest(days_of_trade([11]), "pos")
        after = gw.ledger.states()
    with Gateway(cfg) as gw:  # a restart reads the snapshots and the log kept after them
        assert gw.ledger.states() == after and gw.ledger.verify() == []
        assert gw.recent_sales("A", 30)[1] == [*before[1][1], 6.0]


def test_nothing_undelivered_is_pruned(tmp_path):
    # MQTT on but the broker never reached: every message is pending.
    cfg = config(tmp_path / "mqtt", SHELFCAST_MQTT_ENABLED="true")
    with Gateway(with_mqtt(cfg, host="127.0.0.1", port=1)) as gw:
        gw.ingest(days_of_trade(), "pos")
        n = count(cfg.ledger_path, "outbox")
        assert gw.run_retention().outbox == 0 and count(cfg.ledger_path, "outbox") == n
    # A hub configured, its link not running: nothing is known to be forwarded.
    cfg = config(tmp_path / "hub", SHELFCAST_HUB_URL="nats://127.0.0.1:1")
    with Gateway(cfg) as gw:
        gw.ingest(days_of_trade(), "pos")
        assert gw.run_retention().outbox == 0


def test_the_hub_link_keeps_what_it_has_not_forwarded_and_its_last_stock_message(tmp_path):
    path = tmp_path / "ledger.sqlite"
    box = Outbox(path)
    now = datetime.now(UTC)
    window = {"store_id": "S1", "model_version": "m", "window_start": now, "window_end": now}
    rows = box.put([UplinkDeltas(**window, events=i, deltas=[]) for i in range(8)])
    box.mark_sent([r.seq for r in rows])
    link = JetStreamUplink("nats://127.0.0.1:1", str(path), "S1")
    try:
        link.cursor = rows[5].seq  # forwarded up to the sixth, not yet saved:
        assert link.forwarded_upto(box.connection) == 0  # a crash would re-send them all
        link._save_cursor(force=True)
        upto = link.forwarded_upto(box.connection)
        assert upto == rows[4].seq  # the sixth is the next one's previous stock message
        assert box.prune(keep_sent=0, upto_seq=upto) == 5
        assert [r.seq for r in rows][5:] == [
            s for (s,) in box.connection.execute("SELECT seq FROM outbox ORDER BY seq")
        ]
    finally:
        link.close()
        box.close()


@pytest.mark.mqtt
def test_messages_acknowledged_by_a_real_broker_are_pruned(tmp_path, mosquitto):
    cfg = with_mqtt(config(tmp_path, SHELFCAST_MQTT_ENABLED="true"), host="127.0.0.1",
                    port=mosquitto.port, reconnect_min_s=0.1)  # fmt: skip
    with Gateway(cfg).start() as gw:
        gw.ingest(days_of_trade(), "pos")
        assert gw.flush(20)  # every message acknowledged and marked sent
        assert gw.run_retention().outbox > 0
        assert count(cfg.ledger_path, "outbox") == 3


def test_an_event_log_shorter_than_the_late_bound_is_refused_at_start():
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_RETENTION_EVENT_LOG_DAYS": "30"}
    with pytest.raises(ConfigError, match=r"retention.event_log_days: 30 is below ingest.max_late"):
        load_config(env=env)


def test_the_worker_applies_the_bounds_on_its_own(tmp_path):
    cfg = config(tmp_path, SHELFCAST_RETENTION_EVERY_S="0.2")
    with Gateway(cfg).start() as gw:
        gw.ingest(days_of_trade(), "pos")
        assert count(cfg.ledger_path, "outbox") > 3
        deadline = time.monotonic() + 20
        while count(cfg.ledger_path, "events") > 30 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count(cfg.ledger_path, "outbox") == 3 and count(cfg.ledger_path, "events") == 30
