"""Small MQTT packets leave at once in both directions, not held by Nagle's algorithm until the
previous packet is acknowledged (which a TCP peer with nothing to send back delays by up to
40 ms): the shipped broker settings and the gateway's client socket (real Mosquitto)."""

from __future__ import annotations

import socket
import statistics
import time

import paho.mqtt.client as mqtt
import pytest

from tests.test_mqtt import Inbox, config, start

pytestmark = pytest.mark.mqtt


def _client(broker, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def test_a_message_right_after_a_puback_reaches_its_subscriber_at_once(mosquitto):
    """The gateway's case: the broker PUBACKs the gateway's uplink window, and the till's next
    sale follows to the same gateway a few ms later (broker: ``set_tcp_nodelay``)."""
    arrived: list[float] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw")
    sub.on_message = lambda c, u, m: arrived.append(time.monotonic())
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("sales/#", 1)
    sub.loop_start()
    till = _client(mosquitto, "till")
    time.sleep(0.3)
    ms = []
    try:
        for _ in range(12):
            n = len(arrived)
            sub.publish("uplink/x", b"w" * 300, 1)  # the broker answers it with a PUBACK
            time.sleep(0.004)
            t0 = time.monotonic()
            till.publish("sales/a", b"y" * 100, 1)
            while len(arrived) == n and time.monotonic() - t0 < 1:
                time.sleep(0.0002)
            ms.append((arrived[n] - t0) * 1000)
            time.sleep(0.07)
    finally:
        sub.loop_stop()
        till.loop_stop()
    # with Nagle on the broker's socket: about 37 ms (the subscriber's delayed ACK)
    assert statistics.median(ms) < 10, ms


def test_the_gateways_mqtt_socket_sends_small_packets_at_once(mosquitto):
    t = start(config(mosquitto), Inbox())
    try:
        assert t.client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        t.stop()
