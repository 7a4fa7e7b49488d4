"""Payloads the parser or the store choke on must not stop MQTT ingest: split, dead-letter, go on."""

from __future__ import annotations

import json
import sqlite3
import time

import paho.mqtt.client as mqtt
import pytest

from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway

pytestmark = pytest.mark.mqtt


def good(i):
    return {
        "event_id": f"ok{i}",
        "store_id": "S1",
        "sku": "A",
        "type": "receipt",
        "qty": 1,
        "event_time": "2026-01-05T08:00:00+00:00",
        "source": "wms",
    }


def test_poison_is_dead_lettered_and_the_rest_ingested(tmp_path, mosquitto):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path)}
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=mosquitto.port)
    payloads = [
        json.dumps([good(0), {**good(1), "type": {"x": 1}}, good(2)]).encode(),  # unhashable
        b"[" * 100_000 + b"]" * 100_000,  # nesting bomb
        json.dumps({**good(3), "sku": "\ud800"}).encode(),  # lone surrogate (escaped in JSON)
        json.dumps(good(4)).encode(),
    ]
    with Gateway(cfg).start() as gw:
        assert gw.transport.wait_connected(10)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        for p in payloads:
            pub.publish("shelfcast/S1/events/pos", p, qos=1).wait_for_publish(10)
        pub.loop_stop()
        deadline = time.monotonic() + 20
        while gw.counters["ingested"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gw.stock("A").on_hand == 3  # ok0, ok2, ok4: nothing valid lost
        assert gw._worker.is_alive()
        with sqlite3.connect(cfg.ledger_path) as conn:
            reasons = [r for (r,) in conn.execute("SELECT reason FROM dead_letters ORDER BY id")]
        assert len(reasons) == 3 and all(reasons), reasons
        assert any("nested too deeply" in r for r in reasons)  # the parser judges the bomb


def test_a_big_batch_with_one_bad_event_is_judged_event_by_event(tmp_path, mosquitto):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path)}
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=mosquitto.port)
    batch = [{**good(i), "event_id": f"big{i}", "reason": "p" * 250} for i in range(299)]
    batch.append({**good(999), "type": ["receipt"]})  # crashes the parser
    payload = json.dumps(batch).encode()
    assert len(payload) > 64 * 1024  # takes the "ingest alone" path
    with Gateway(cfg).start() as gw:
        assert gw.transport.wait_connected(10)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        pub.publish("shelfcast/S1/events/wms", payload, qos=1).wait_for_publish(10)
        pub.loop_stop()
        deadline = time.monotonic() + 20
        while gw.counters["ingested"] + gw.counters["rejected"] < 300:
            assert time.monotonic() < deadline, gw.counters
            time.sleep(0.05)
        assert gw.stock("A").on_hand == 299 and gw.counters["rejected"] == 1
