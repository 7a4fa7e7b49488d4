"""The shipped broker settings against a real Mosquitto: a gateway away while thousands of events
arrive loses none of them, and when the broker does drop messages the gateway says so."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
import pytest

from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway
from edge_runtime.transport.broker_config import OUTAGE_EVENTS_PER_S, OUTAGE_S, shipped_settings
from tests.mosquitto import Mosquitto, Subscriber, wait

pytestmark = pytest.mark.mqtt


def gateway(tmp_path, broker) -> Gateway:
    cfg = load_config(
        env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    )
    cfg = with_mqtt(cfg, host="127.0.0.1", port=broker.port, reconnect_min_s=0.1,
                    reconnect_max_s=0.5)  # fmt: skip
    gw = Gateway(cfg).start()
    assert gw.transport.wait_connected(10), "gateway did not connect"
    return gw


def publish_events(broker, n: int) -> None:
    """``n`` single-event QoS 1 messages, as tills send them; returns once all are PUBACKed."""
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tills")
    pub.max_queued_messages_set(0)
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    infos = []
    for i in range(n):
        event = {"event_id": f"e{i}", "store_id": "S1", "sku": f"K{i % 50}", "type": "receipt",
                 "qty": 1, "event_time": "2026-01-05T10:00:00+00:00", "source": "wms"}  # fmt: skip
        infos.append(pub.publish("shelfcast/S1/events/wms", json.dumps(event), qos=1))
    for info in infos:
        info.wait_for_publish(30)
    pub.loop_stop()
    pub.disconnect()


def test_shipped_queue_covers_the_stated_outage():
    settings = shipped_settings()
    assert int(settings["max_queued_messages"]) >= OUTAGE_EVENTS_PER_S * OUTAGE_S
    assert settings["persistence"] == "true"
    assert settings["persistent_client_expiration"]
    assert int(settings["max_inflight_messages"]) > 20


def test_events_sent_while_the_gateway_is_away_all_arrive(tmp_path, mosquitto):
    gw = gateway(tmp_path, mosquitto)  # creates the persistent session
    gw.close()
    publish_events(mosquitto, 3000)  # Mosquitto's default queue (1,000) would drop 2,000
    gw = gateway(tmp_path, mosquitto)
    try:
        assert wait(lambda: gw.ledger.event_count() == 3000, 60), gw.ledger.event_count()
    finally:
        gw.close()


def test_gateway_reports_messages_the_broker_dropped(tmp_path):
    # The shipped settings with a queue too small for the outage, $SYS every second.
    broker = Mosquitto(
        tmp_path / "broker", overrides={"max_queued_messages": "100", "sys_interval": "1"}
    ).start()
    try:
        gw = gateway(tmp_path, broker)
        gw.close()
        publish_events(broker, 300)
        state = Subscriber(broker, ["shelfcast/S1/state"], client_id="watch", clean_session=True)
        gw = gateway(tmp_path, broker)
        try:
            assert wait(lambda: (gw.transport.broker_dropped or 0) >= 200, 15)
            assert wait(lambda: gw.counters.get("broker_dropped", 0) >= 200, 5)

            def reported() -> bool:
                return any(
                    (json.loads(p).get("broker_dropped") or 0) >= 200 for _, p, _ in state.received
                )

            assert wait(reported, 10), state.received
            assert gw.ledger.event_count() < 300  # what the broker dropped never arrived
        finally:
            gw.close()
            state.close()
    finally:
        broker.stop()


def test_a_clean_broker_reports_no_drops(tmp_path):
    broker = Mosquitto(tmp_path / "broker", overrides={"sys_interval": "1"}).start()
    try:
        gw = gateway(tmp_path, broker)
        try:
            deadline = time.monotonic() + 5
            while gw.transport.broker_dropped is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert gw.transport.broker_dropped == 0
        finally:
            gw.close()
    finally:
        broker.stop()
