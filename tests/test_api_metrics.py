"""/metrics over a gateway running with a real Mosquitto: events by transport, alerts published,
outbox depth and scoring latency, as Prometheus text."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.build_info import REVISION, VERSION
from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer
from tests.fuzz_messages import publish_all
from tests.mosquitto import Mosquitto, mosquitto_binary

pytestmark = pytest.mark.mqtt
TOKEN = "metrics-token-0123456"


def event(event_id: str, qty: int) -> dict:
    return {"event_id": event_id, "store_id": "S1", "sku": "M", "type": "receipt", "qty": qty,
            "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}  # fmt: skip


def value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert found, f"{sample} missing from /metrics"
    return float(found.group(1))


def test_metrics_count_both_transports_and_published_alerts(tmp_path):
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (make test installs it)")
    with Mosquitto(tmp_path / "broker") as broker:
        env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
        gw = Gateway(with_mqtt(load_config(env=env), host="127.0.0.1", port=broker.port)).start()
        try:
            assert gw.transport.wait_connected(10)
            with ApiServer(create_app(gw, ApiSettings(token=TOKEN))) as server:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                httpx.post(server.url + "/v1/events", json=event("api-1", 1), headers=auth)
                publish_all(broker.port, [json.dumps(event("mqtt-1", 1)).encode(), b"{broken"])
                deadline = time.monotonic() + 10
                while gw.counters["ingested"] < 2 or gw.counters["rejected"] < 1:
                    assert time.monotonic() < deadline, gw.counters
                    time.sleep(0.02)
                assert gw.flush(10)  # the replenishment alert reached the broker
                text = httpx.get(server.url + "/metrics").text
        finally:
            gw.close()
    assert value(text, 'shelfcast_events_ingested_total{transport="api"}') == 1
    assert value(text, 'shelfcast_events_ingested_total{transport="mqtt"}') == 1
    assert value(text, 'shelfcast_events_rejected_total{transport="mqtt"}') == 1
    assert value(text, 'shelfcast_alerts_created_total{kind="replenishment"}') >= 1
    assert value(text, 'shelfcast_alerts_created_total{kind="deadletter"}') == 1  # the {broken
    assert value(text, "shelfcast_mqtt_connects_total") == 1
    assert value(text, f'shelfcast_build_info{{revision="{REVISION}",version="{VERSION}"}}') == 1
    assert value(text, "process_resident_memory_bytes") > 0
    assert value(text, 'shelfcast_alerts_published_total{kind="replenishment"}') >= 1
    assert value(text, 'shelfcast_alerts_published_total{kind="deadletter"}') == 1
    assert value(text, "shelfcast_outbox_depth") == 0
    assert "# TYPE shelfcast_scoring_latency_seconds histogram" in text
