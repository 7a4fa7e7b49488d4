"""An unreachable broker is said at once, then with backoff, and readiness fails naming it:
a port nothing listens on, a host name that does not resolve, TLS against a plain listener
(real Mosquitto). Before, paho retried silently and /ready stayed 200."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer
from tests.mosquitto import Mosquitto, free_port, wait

pytestmark = pytest.mark.mqtt


def gateway(tmp_path, host: str, port: int, **mqtt) -> Gateway:
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    cfg = with_mqtt(load_config(env=env), host=host, port=port, reconnect_min_s=0.1,
                    reconnect_max_s=0.4, **mqtt)  # fmt: skip
    return Gateway(cfg).start()


def get(gw: Gateway, path: str) -> httpx.Response:
    """``path`` of the real API (uvicorn) over ``gw``."""
    server = ApiServer(create_app(gw, ApiSettings())).start()
    try:
        return httpx.get(server.url + path, timeout=10)
    finally:
        server.stop()


def warnings(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and text in r.getMessage()]  # fmt: skip


def check_unreachable(caplog, gw: Gateway, where: str, reason: str) -> None:
    """Logged within 2 s with host:port and the reason; /ready 503 naming mqtt."""
    assert wait(lambda: warnings(caplog, where), 2), "nothing logged within 2 s"
    assert reason in warnings(caplog, where)[0]
    ready = get(gw, "/ready")
    assert ready.status_code == 503, ready.text
    assert ready.json()["checks"]["mqtt"].startswith(f"failing: broker {where} unreachable")
    assert reason in ready.json()["checks"]["mqtt"]
    assert "shelfcast_broker_connected 0.0" in get(gw, "/metrics").text


def test_a_port_nothing_listens_on_then_the_broker_comes(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    port = free_port()
    gw = gateway(tmp_path, "127.0.0.1", port)
    try:
        check_unreachable(caplog, gw, f"127.0.0.1:{port}", "connection refused")
        time.sleep(2.0)  # many attempts, few lines: 1, 2, 4, 8, ...
        attempts, logged = gw.transport.failed_attempts, len(warnings(caplog, f":{port}"))
        assert attempts >= 5 and logged <= attempts.bit_length(), (attempts, logged)
        with Mosquitto(tmp_path / "broker", port=port):
            assert gw.transport.wait_connected(10)
            ready = get(gw, "/ready")
            assert ready.status_code == 200 and ready.json()["checks"]["mqtt"] == "ok (connected)"
    finally:
        gw.close()


def test_a_host_name_that_does_not_resolve(tmp_path, caplog):
    gw = gateway(tmp_path, "no-such-broker.invalid", 1883)
    try:
        check_unreachable(caplog, gw, "no-such-broker.invalid:1883", "cannot resolve")
    finally:
        gw.close()


def test_tls_against_a_plain_listener(tmp_path, caplog, mosquitto):
    gw = gateway(tmp_path, "127.0.0.1", mosquitto.port, tls=True)
    try:
        check_unreachable(caplog, gw, f"127.0.0.1:{mosquitto.port}", "TLS")
    finally:
        gw.close()
