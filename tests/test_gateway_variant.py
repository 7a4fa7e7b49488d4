"""The benchmark harness's gateway variants (``benchmarks/gateway_variant.py``) switch what they
name in the process they run in, and nothing when none is named (real Mosquitto)."""

from __future__ import annotations

import socket

import pytest

from benchmarks import gateway_variant
from edge_runtime.transport import outbox_pump
from edge_runtime.transport.lean_client import LeanClient
from tests.test_mqtt import Inbox, config, start

pytestmark = pytest.mark.mqtt


def _nodelay(broker) -> int:
    t = start(config(broker), Inbox())
    try:
        return t.client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        t.stop()


@pytest.fixture
def restored(monkeypatch):
    """Whatever a variant patches is put back after the test."""
    monkeypatch.setattr(
        LeanClient, "_create_socket_connection", LeanClient.__dict__["_create_socket_connection"]
    )
    monkeypatch.setattr(outbox_pump, "MARK_EVERY_S", outbox_pump.MARK_EVERY_S)


def test_nagle_and_the_mark_period_switched_for_the_gateway(mosquitto, restored, monkeypatch):
    shipped = outbox_pump.MARK_EVERY_S
    monkeypatch.setenv(gateway_variant.VARIANT_ENV, "")
    assert gateway_variant.apply_from_env() == {}
    assert _nodelay(mosquitto)
    assert shipped == outbox_pump.MARK_EVERY_S

    monkeypatch.setenv(gateway_variant.VARIANT_ENV, "nagle,mark=0.05")
    assert gateway_variant.apply_from_env() == {"nagle": True, "mark": 0.05}
    assert not _nodelay(mosquitto)
    assert pytest.approx(0.05) == outbox_pump.MARK_EVERY_S


def test_an_unknown_variant_is_refused():
    with pytest.raises(ValueError):
        gateway_variant.parse("nodelay")
    with pytest.raises(ValueError):
        gateway_variant.parse("mark")


def test_the_brokers_nagle_is_the_benchmarks_broker_setting_not_a_gateway_patch(restored):
    assert gateway_variant.broker_overrides("") == {}
    assert gateway_variant.broker_overrides("broker-nagle") == {"set_tcp_nodelay": "false"}
    shipped = outbox_pump.MARK_EVERY_S
    assert gateway_variant.apply("broker-nagle") == {"broker_nagle": True}
    assert shipped == outbox_pump.MARK_EVERY_S
    assert LeanClient.__dict__["_create_socket_connection"].__qualname__.startswith("LeanClient")
