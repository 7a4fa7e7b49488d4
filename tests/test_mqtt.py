"""The paho transport against a real Mosquitto: TLS, persistent session, manual ack, last will."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from edge_runtime.config import load_config, with_mqtt
from edge_runtime.messages import StockoutAlert
from edge_runtime.store.outbox import Outbox
from edge_runtime.transport.mqtt import MqttTransport
from tests.mosquitto import Subscriber, wait

pytestmark = pytest.mark.mqtt


def config(broker, **mqtt):
    cfg = load_config(env={"SHELFCAST_STORE_ID": "S1"})
    return with_mqtt(
        cfg, port=broker.port, host="127.0.0.1", reconnect_min_s=0.1, reconnect_max_s=0.5, **mqtt
    )


class Inbox:
    """Collects what the transport hands the gateway; acks only when told (like the gateway)."""

    def __init__(self, ack: bool = True):
        self.items: list[tuple[bytes, str, int, int]] = []
        self.transport: MqttTransport | None = None
        self.auto_ack = ack

    def __call__(self, payload, source, mid, qos):
        self.items.append((payload, source, mid, qos))
        if self.auto_ack:
            self.transport.ack([(mid, qos)])


def start(cfg, inbox):
    t = MqttTransport(cfg, on_payload=inbox, model_version="m")
    inbox.transport = t
    t.start()
    assert t.wait_connected(10), "transport did not connect"
    return t


def pub(broker, topic, payload, *tls_args):
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(broker.port),
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            payload,
            *tls_args,
        ],
        check=True,
        timeout=10,
    )


def test_outbox_rows_reach_a_tls_consumer_and_are_acked(mosquitto_tls, tmp_path):
    tls = mosquitto_tls.tls
    cfg = config(
        mosquitto_tls,
        tls=True,
        ca_file=str(tls.ca_file),
        cert_file=str(tls.client_cert),
        key_file=str(tls.client_key),
    )
    consumer = Subscriber(mosquitto_tls, ["shelfcast/S1/alerts/#"], tls=tls)
    box = Outbox(tmp_path / "l.sqlite")
    rows = box.put(
        [
            StockoutAlert(store_id="S1", sku=f"A{i}", model_version="m", probability=1.0)
            for i in range(20)
        ]
    )
    t = start(cfg, Inbox())
    t.publish(rows)
    got = consumer.wait_for(20)
    assert [json.loads(p)["message_id"] for _, p, _ in got] == [r.message_id for r in rows]
    acked = []
    assert wait(lambda: acked.extend(t.take_acked()) or len(acked) == len(rows))
    assert sorted(acked) == [r.seq for r in rows] and t.inflight == 0
    # Events come in over TLS too; a client without a certificate is refused.
    inbox = t._on_payload
    tls_args = tls.client_args()
    pub(mosquitto_tls, "shelfcast/S1/events/pos", '{"x": 1}', *tls_args)
    assert wait(lambda: inbox.items) and inbox.items[0][1] == "pos"
    refused = subprocess.run(
        [
            "mosquitto_pub",
            "-p",
            str(mosquitto_tls.port),
            "--cafile",
            str(tls.ca_file),
            "-t",
            "x",
            "-m",
            "y",
        ],
        capture_output=True,
        timeout=10,
    )
    assert refused.returncode != 0
    t.stop()
    consumer.close()


def test_a_backlog_and_a_burst_of_alerts_pass_whole_and_in_order(mosquitto, tmp_path, monkeypatch):
    """Hundreds of queued events read in large chunks (packets split across reads) arrive
    whole, once and in order, without a paho message object each; the alerts' PUBACKs are all
    taken, and none of them builds an MQTT 5 property table
    (``edge_runtime.transport.lean_client``)."""
    import paho.mqtt.client as paho
    from paho.mqtt import properties

    cfg = config(mosquitto)
    t = start(cfg, Inbox())
    t.stop()  # the session exists: events queue in the broker meanwhile
    lines = "".join(json.dumps({"n": i, "pad": "x" * (i % 97)}) + "\n" for i in range(600))
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-q", "1",
         "-t", "shelfcast/S1/events/pos", "-l"],
        input=lines.encode(), check=True, timeout=30,
    )  # fmt: skip
    built = []
    real_init = properties.Properties.__init__
    monkeypatch.setattr(
        properties.Properties, "__init__", lambda self, *a: built.append(a) or real_init(self, *a)
    )
    messages = []  # paho's message objects: one per alert published, and any event's
    real_message = paho.MQTTMessage.__init__
    monkeypatch.setattr(
        paho.MQTTMessage,
        "__init__",
        lambda self, *a, **k: messages.append(1) or real_message(self, *a, **k),
    )
    inbox = Inbox()
    t2 = start(cfg, inbox)
    box = Outbox(tmp_path / "l.sqlite")
    rows = box.put(
        [
            StockoutAlert(store_id="S1", sku=f"A{i}", model_version="m", probability=1.0)
            for i in range(min(200, t2.window))
        ]
    )
    t2.publish(rows)
    acked = []
    assert wait(lambda: acked.extend(t2.take_acked()) or len(acked) == len(rows))
    assert sorted(acked) == [r.seq for r in rows] and t2.inflight == 0
    assert wait(lambda: len(inbox.items) == 600)
    assert [json.loads(p)["n"] for p, *_ in inbox.items] == list(range(600))
    assert len(built) < 10, f"{len(built)} property tables built for {len(rows)} PUBACKs"
    assert len(messages) < len(rows) + 10, f"{len(messages)} paho message objects for 600 events"
    t2.stop()


def test_events_published_while_the_gateway_is_down_are_kept(mosquitto):
    cfg = config(mosquitto)
    t = start(cfg, Inbox())
    t.stop()  # a restart: persistent session, same client id
    for i in range(5):
        pub(mosquitto, "shelfcast/S1/events/pos", json.dumps({"n": i}))
    inbox = Inbox()
    t2 = start(cfg, inbox)
    assert wait(lambda: len(inbox.items) == 5)
    assert [json.loads(p)["n"] for p, *_ in inbox.items] == list(range(5))
    t2.stop()


def test_unacked_events_are_redelivered_after_a_crash(mosquitto):
    cfg = config(mosquitto)
    inbox = Inbox(ack=False)  # the gateway "crashed" before the events were durable
    t = start(cfg, inbox)
    pub(mosquitto, "shelfcast/S1/events/ecom", '{"n": 1}')
    assert wait(lambda: len(inbox.items) == 1)
    t.client.socket().shutdown(socket.SHUT_RDWR)  # connection lost without DISCONNECT
    t.client.loop_stop()
    inbox2 = Inbox()
    t2 = start(cfg, inbox2)
    assert wait(lambda: len(inbox2.items) == 1), "unacknowledged event was not redelivered"
    assert inbox2.items[0][1] == "ecom"
    t2.stop()


def test_a_commit_acknowledges_its_events_in_one_write_and_none_comes_again(mosquitto):
    cfg = config(mosquitto)
    inbox = Inbox(ack=False)
    t = start(cfg, inbox)
    for i in range(50):
        pub(mosquitto, "shelfcast/S1/events/pos", json.dumps({"n": i}))
    assert wait(lambda: len(inbox.items) == 50)
    queued = []
    real_queue = t.client._packet_queue
    t.client._packet_queue = lambda *a, **k: (queued.append(a[1]), real_queue(*a, **k))[1]
    t.ack([(mid, qos) for _, _, mid, qos in inbox.items])
    # One queued packet: every PUBACK as paho builds it, back to back, in the events' order.
    assert queued == [b"".join(bytes([0x40, 2, mid >> 8, mid & 0xFF]) for _, _, mid, _ in
                               inbox.items)]  # fmt: skip
    t.client._packet_queue = real_queue
    assert wait(lambda: not t.client._out_packet)  # written to the broker
    t.stop()  # a clean restart: whatever the broker holds unacknowledged comes again
    inbox2 = Inbox()
    t2 = start(cfg, inbox2)
    pub(mosquitto, "shelfcast/S1/events/pos", json.dumps({"n": "after"}))
    assert wait(lambda: len(inbox2.items) >= 1)
    assert [json.loads(p)["n"] for p, *_ in inbox2.items] == ["after"]
    t2.stop()


def test_last_will_marks_the_gateway_offline_then_online_again(mosquitto):
    states = Subscriber(mosquitto, ["shelfcast/S1/state"], client_id="state-watch")
    t = start(config(mosquitto), Inbox())
    assert wait(lambda: any(b'"online"' in p for _, p, _ in states.received))
    t.client.socket().shutdown(socket.SHUT_RDWR)  # the gateway vanishes
    assert wait(lambda: any(b'"offline"' in p for _, p, _ in states.received)), "no last will"
    assert wait(lambda: t.connected), "did not reconnect"
    assert wait(lambda: b'"online"' in states.received[-1][1])
    t.stop()
    assert wait(lambda: b'"offline"' in states.received[-1][1])
    # Retained: a consumer connecting later still learns the state.
    late = Subscriber(mosquitto, ["shelfcast/S1/state"], client_id="late", clean_session=True)
    assert b'"offline"' in late.wait_for(1)[0][1]
    states.close()
    late.close()


def test_a_clean_stop_is_not_reported_as_a_lost_connection(mosquitto, caplog):
    t = start(config(mosquitto), Inbox())
    with caplog.at_level("INFO", logger="edge_runtime.transport.mqtt"):
        t.stop()
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert any("disconnected from broker" in m for _, m in said), said
    assert not any(level == "WARNING" or "reconnecting" in m for level, m in said), said


def test_outbox_rows_handed_over_before_an_outage_arrive_after_it(mosquitto, tmp_path):
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/#"])
    t = start(config(mosquitto), Inbox())
    mosquitto.stop()
    assert wait(lambda: not t.connected)
    box = Outbox(tmp_path / "l.sqlite")
    rows = box.put([StockoutAlert(store_id="S1", sku="A", model_version="m", probability=1.0)])
    t.publish(rows)  # paho holds it while the broker is down
    mosquitto.start()
    assert wait(lambda: t.connected, 15)
    got = consumer.wait_for(1, 15)
    assert [json.loads(p)["message_id"] for _, p, _ in got] == [rows[0].message_id]
    acked = []
    assert wait(lambda: acked.extend(t.take_acked()) or acked) and acked == [rows[0].seq]
    t.stop()
    consumer.close()


def test_username_and_password_from_the_environment(tmp_path):
    from edge_runtime.config import load_config as load
    from tests.mosquitto import Mosquitto

    with Mosquitto(tmp_path / "broker", users={"gw-S1": "s3cret"}) as broker:
        env = {
            "SHELFCAST_STORE_ID": "S1",
            "SHELFCAST_MQTT_HOST": "127.0.0.1",
            "SHELFCAST_MQTT_PORT": str(broker.port),
            "SHELFCAST_MQTT_USERNAME": "gw-S1",
            "SHELFCAST_MQTT_PASSWORD": "s3cret",
        }
        t = start(load(env=env), Inbox())
        t.stop()
        wrong = MqttTransport(load(env={**env, "SHELFCAST_MQTT_PASSWORD": "nope"}), Inbox())
        wrong.start()
        assert not wrong.wait_connected(2), "a wrong password must not connect"
        wrong.stop()


def test_a_commits_alerts_leave_in_one_write_whole_and_in_order(mosquitto, tmp_path, monkeypatch):
    """The rows of one hand-over are queued to paho's network thread as one run of PUBLISH
    packets (one wake-up, not one per alert), yet each is its own message: a consumer gets
    them all in order with their retain flags, and every PUBACK completes its row."""
    from edge_runtime.messages import GatewayState

    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/#"], client_id="one-write")
    t = start(config(mosquitto), Inbox())
    queued = []
    real_queue = t.client._packet_queue
    monkeypatch.setattr(
        t.client,
        "_packet_queue",
        lambda cmd, *a, **k: queued.append(cmd) or real_queue(cmd, *a, **k),
    )
    box = Outbox(tmp_path / "l.sqlite")
    alerts = [
        StockoutAlert(store_id="S1", sku=f"A{i}", model_version="m", probability=1.0,
                      evidence={"pad": "x" * (i * 40)})  # some beyond 127 bytes: longer lengths
        for i in range(50)
    ]  # fmt: skip
    rows = box.put([*alerts, GatewayState(store_id="S1", status="online", model_version="m")])
    assert wait(lambda: t.client._inflight_messages == 0)  # its own state message is out
    queued.clear()
    t.publish(rows)
    assert queued == [0x30], "one queued write for the whole hand-over"
    got = consumer.wait_for(50)
    assert [json.loads(p)["message_id"] for _, p, _ in got] == [r.message_id for r in rows[:50]]
    acked = []
    assert wait(lambda: acked.extend(t.take_acked()) or len(acked) == len(rows))
    assert sorted(acked) == [r.seq for r in rows] and t.inflight == 0
    late = Subscriber(mosquitto, ["shelfcast/S1/state"], client_id="late-state")
    assert json.loads(late.wait_for(1)[0][1])["status"] == "online"  # retained, as paho sends it
    t.stop()
    consumer.close(), late.close()
