"""kill -9 of a running gateway (``shelfcast run``) mid-stream: after restarts, every alert arrives
(de-duplicated on ``message_id``), none is invented, and the ledger counts each event once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_runtime.store.ledger import Ledger
from tests.mosquitto import Subscriber

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
SKUS = 60


def events():
    out, n = [], 0
    for k in range(SKUS):
        for kind, qty in (("receipt", 3), ("sale", 1), ("sale", 2)):
            out.append(
                {"event_id": f"e{n}", "store_id": "S1", "sku": f"K{k}", "type": kind, "qty": qty,
                 "event_time": f"2026-01-05T10:{n // 60 % 60:02d}:{n % 60:02d}+00:00",
                 "source": "pos"}
            )  # fmt: skip
            n += 1
    return out


def start_gateway(tmp_path, broker):
    env = {
        **os.environ,
        "SHELFCAST_STORE_ID": "S1",
        "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
        "SHELFCAST_MQTT_HOST": "127.0.0.1",
        "SHELFCAST_MQTT_PORT": str(broker.port),
        "SHELFCAST_MQTT_RECONNECT_MIN_S": "0.1",
        "SHELFCAST_MQTT_RECONNECT_MAX_S": "0.5",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "shelfcast.cli", "run", "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_kill_9_loses_and_double_counts_nothing(tmp_path, mosquitto):
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/#"], client_id="replenishment")
    stream = events()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tills")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()

    def publish():
        for e in stream:
            pub.publish("shelfcast/S1/events/pos", json.dumps(e), qos=1)
            time.sleep(0.01)

    rng = random.Random(5)
    states = Subscriber(mosquitto, ["shelfcast/S1/state"], client_id="watch", clean_session=True)
    gw = start_gateway(tmp_path, mosquitto)
    # The gateway's persistent subscription exists from its first connect on.
    deadline = time.monotonic() + 30
    while not any(b'"online"' in p for _, p, _ in states.received):
        assert time.monotonic() < deadline, "gateway did not come online"
        time.sleep(0.05)
    states.close()
    sender = threading.Thread(target=publish)
    sender.start()
    for _ in range(3):  # kill -9 at random moments while events flow
        time.sleep(rng.uniform(0.3, 0.8))
        gw.send_signal(signal.SIGKILL)
        gw.wait(10)
        gw = start_gateway(tmp_path, mosquitto)
    sender.join()
    try:
        deadline = time.monotonic() + 60
        expected = {(f"K{k}", kind) for k in range(SKUS) for kind in ("replenishment", "stockout")}

        def got():
            return {(json.loads(p)["sku"], json.loads(p)["kind"]) for _, p, _ in consumer.received}

        while got() != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got() == expected  # none lost, none invented
        ids = {json.loads(p)["message_id"] for _, p, _ in consumer.received}
        assert len(ids) == len(expected)  # redeliveries carry the same message_id
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(20)
        pub.loop_stop()
        consumer.close()
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite", "S1")
    assert ledger.event_count() == len(stream)
    assert all(ledger.stock(f"K{k}").on_hand == 0 for k in range(SKUS))
    assert ledger.verify() == []
    ledger.close()
