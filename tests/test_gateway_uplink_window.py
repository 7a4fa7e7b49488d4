"""The uplink window rides with the commit that finds it due (one transaction, not two), at
most one window per interval, and nothing of it moves when that transaction rolls back. Real
SQLite files; the gateway's worker is not started, so nothing but the commits writes windows
unless a test starts it."""

from __future__ import annotations

import gzip
import json
import sqlite3
import time

import pytest

import edge_runtime.transport.uplink as uplink_module
from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from edge_runtime.store.store_failure import StoreError
from edge_runtime.transport.uplink import own_window_interval
from tests.test_gateway_rollback import fail_next_commit

INTERVAL_S = 0.3


def ev(i: int, sku: str, kind: str, qty: int) -> dict:
    return {"event_id": f"e{i}", "store_id": "S1", "sku": sku, "type": kind, "qty": qty,
            "event_time": f"2026-01-05T10:00:{i:02d}+00:00", "source": "pos"}  # fmt: skip


def gateway(tmp_path) -> Gateway:
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path),
           "SHELFCAST_MQTT_ENABLED": "false", "SHELFCAST_UPLINK_INTERVAL_S": str(INTERVAL_S)}  # fmt: skip
    return Gateway(load_config(env=env))


def windows(gw: Gateway) -> list[dict]:
    """The uplink windows in the outbox, oldest first."""
    return [json.loads(p) for p in reversed(gw.outbox.recent("uplink"))]


def deltas(window: dict) -> dict[str, list]:
    return {row[0]: row[1:] for row in window["deltas"]}


def test_a_commit_that_finds_the_window_due_carries_it(tmp_path):
    with gateway(tmp_path) as gw:
        time.sleep(INTERVAL_S)  # the first window is due
        gw.ingest(ev(0, "A", "receipt", 5), "api")
        (first,) = windows(gw)  # written by that commit: no flush, no worker
        assert deltas(first) == {"A": [5, 0, 5, 5, 1]}
        gw.ingest(ev(1, "A", "sale", 5), "api")  # within the interval: waits for the next
        assert len(windows(gw)) == 1 and gw.uplink.pending_skus == 1
        time.sleep(INTERVAL_S)
        gw.ingest(ev(2, "B", "receipt", 2), "api")
        second = windows(gw)[1]
        assert deltas(second) == {"A": [-5, 0, 0, 0, 1], "B": [2, 0, 2, 2, 1]}
        assert ["A", "stockout", "ON_HAND_ZERO"] in second["exceptions"]  # its commit's alert
        assert second["window_start"] == first["window_end"]
        assert gw.uplink.flush() == [] and not gw.uplink.waiting


def test_a_window_rolled_back_with_its_commit_stays_for_the_next(tmp_path):
    with gateway(tmp_path) as gw:
        gw.ingest(ev(0, "A", "receipt", 5), "api")  # not due yet: waits
        time.sleep(INTERVAL_S)
        fail_next_commit(gw)
        with pytest.raises(StoreError):
            gw.ingest(ev(1, "B", "receipt", 2), "api")  # would carry the window: rolled back
        assert windows(gw) == [] and gw.uplink.pending_skus == 1  # A only, as committed
        gw.ingest(ev(1, "B", "receipt", 2), "api")  # redelivered
        (window,) = windows(gw)
        assert deltas(window) == {"A": [5, 0, 5, 5, 1], "B": [2, 0, 2, 2, 1]}
        baseline = gw.outbox.connection.execute("SELECT sku, on_hand FROM uplink_baseline")
        assert sorted(baseline) == [("A", 5), ("B", 2)]


def test_the_worker_writes_a_waiting_window_when_it_falls_due(tmp_path):
    with gateway(tmp_path).start() as gw:
        time.sleep(INTERVAL_S)
        gw.ingest(ev(0, "A", "receipt", 5), "api")  # carried at once
        t0 = time.monotonic()
        gw.ingest(ev(1, "A", "sale", 1), "api")  # waits for the interval (and for no event)
        while len(windows(gw)) < 2 and time.monotonic() - t0 < 5:
            time.sleep(0.005)
        waited = time.monotonic() - t0
        assert deltas(windows(gw)[1]) == {"A": [-1, 0, 4, 4, 1]}
        own = own_window_interval(INTERVAL_S)  # no commit came to carry it
        assert own * 0.8 <= waited <= own + 0.1  # not a tick late


def test_a_due_window_waits_a_grace_for_an_event_to_carry_it(tmp_path, monkeypatch):
    """Past its interval a waiting window is not written by the worker at once: the next
    event's commit carries it (one commit, not two) when it comes within the grace."""
    monkeypatch.setattr(uplink_module, "CARRY_GRACE_MAX_S", 0.3)  # a grace of 0.15 s here
    with gateway(tmp_path).start() as gw:
        time.sleep(INTERVAL_S)
        gw.ingest(ev(0, "A", "receipt", 5), "api")  # carried at once
        t0 = time.monotonic()
        gw.ingest(ev(1, "A", "sale", 1), "api")  # waits
        time.sleep(INTERVAL_S + 0.05 - (time.monotonic() - t0))  # due, within the grace
        assert len(windows(gw)) == 1  # the worker has not written it
        gw.ingest(ev(2, "B", "receipt", 2), "api")  # carries it
        (_, second) = windows(gw)
        assert deltas(second) == {"A": [-1, 0, 4, 4, 1], "B": [2, 0, 2, 2, 1]}


def test_windows_are_counted_apart_from_the_decisions(tmp_path):
    with gateway(tmp_path) as gw:
        time.sleep(INTERVAL_S)
        gw.ingest(ev(0, "A", "receipt", 5), "api")
        assert len(windows(gw)) == 1
        assert "uplink" not in gw.created_by_kind and gw.counters["messages"] == 0


def test_a_full_window_payload_is_the_same_bytes_either_way(tmp_path):
    """Carried by a commit or written by the worker, a window is one ``UplinkDeltas``."""
    with gateway(tmp_path / "a") as gw:
        time.sleep(INTERVAL_S)
        gw.ingest(ev(0, "A", "receipt", 5), "api")
        carried = gzip.decompress(gw.outbox.connection.execute(
            "SELECT payload FROM outbox WHERE kind = 'uplink'").fetchone()[0])  # fmt: skip
    with gateway(tmp_path / "b") as gw:
        gw.ingest(ev(0, "A", "receipt", 5), "api")
        (row,) = gw.uplink.flush()
        flushed = gzip.decompress(row.payload)
    a, b = json.loads(carried), json.loads(flushed)
    for key in ("message_id", "created_at", "window_start", "window_end"):
        a.pop(key), b.pop(key)
    assert a == b


def test_store_errors_inside_the_window_write_are_store_errors(tmp_path):
    with gateway(tmp_path) as gw:
        time.sleep(INTERVAL_S)
        real = gw.uplink.write

        def broken(conn, *args):
            raise sqlite3.OperationalError("database or disk is full")

        gw.uplink.write = broken
        with pytest.raises(StoreError):
            gw.ingest(ev(0, "A", "receipt", 5), "api")
        gw.uplink.write = real
        assert gw.stock("A") is None and windows(gw) == []


@pytest.mark.parametrize(
    "deltas, exceptions",
    [
        ([("A", -1, 0, 4, 4, 1)], []),
        ([("A", -2.0, 1.0, 5.0, 3, 2), ("B", 0, -1, 7, 7, 1)], [("A", "stockout", "atp_zero")]),
        ([], [("C", "conflict", "reserved_units_gone")]),
    ],
)
def test_a_window_message_built_without_validation_reads_as_a_validated_one(deltas, exceptions):
    from datetime import UTC, datetime, timedelta

    from edge_runtime.messages import UplinkDeltas

    end = datetime.now(UTC)
    fields = dict(store_id="S1", model_version="rules-1", window_start=end - timedelta(seconds=1),
                  window_end=end, events=sum(d[-1] for d in deltas), deltas=deltas,
                  exceptions=exceptions, message_id="m1", created_at=end)  # fmt: skip
    lean = uplink_module.window_message(**fields)
    assert lean.to_json() == UplinkDeltas(**fields).to_json()
    assert lean.to_payload() == UplinkDeltas(**fields).to_payload()
    assert lean.message_id == "m1" and lean.topic("p") == "p/S1/uplink/deltas"
    fresh = {k: v for k, v in fields.items() if k not in ("message_id", "created_at")}
    a, b = uplink_module.window_message(**fresh), uplink_module.window_message(**fresh)
    assert a.message_id != b.message_id and a.created_at.tzinfo is not None  # defaults drawn
