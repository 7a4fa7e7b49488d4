"""10,000+ malformed or hostile messages through API ingest and through MQTT ingest: no crash,
each one dead-lettered with a reason, the ledger unchanged by them.

The gateway is real (ledger, rule policy, outbox), the API is served by real uvicorn, the broker
is a real Mosquitto. Messages that are JSON values travel in batches of 500 (each item is still
judged on its own), broken ones travel alone; see ``tests/fuzz_messages.py``.
"""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer
from tests.fuzz_messages import Hostile, batches, hostile_messages
from tests.mosquitto import Mosquitto, mosquitto_binary

TOKEN = "fuzz-token-0123456789"
N = 10_000
# Shapes that crash edge_runtime's parser or store instead of being rejected (see the report of
# issue 7): the API dead-letters them itself (api/poison.py); MQTT ingest does not yet.
RUNTIME_CRASHERS = {"unhashable", "surrogate", "nesting_bomb"}


def gateway(tmp_path, broker: Mosquitto | None = None) -> Gateway:
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    if broker is None:
        return Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"}))
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=broker.port)
    return Gateway(cfg).start()


def seed(gw: Gateway) -> None:
    gw.ingest(
        [
            {"event_id": f"seed-{i}", "store_id": "S1", "sku": f"F-{i}", "type": "receipt",
             "qty": 10 + i, "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
            for i in range(50)
        ],
        "seed",
    )  # fmt: skip


def snapshot(gw: Gateway) -> tuple:
    return gw.ledger.event_count(), gw.ledger.stocks(0, 10_000)


def dead_letters(gw: Gateway) -> tuple[int, int]:
    """(rows, rows without a reason) in the dead-letter store, read through its own connection."""
    with sqlite3.connect(gw.cfg.ledger_path) as conn:
        rows, blank = conn.execute(
            "SELECT count(*), coalesce(sum(reason IS NULL OR reason = ''), 0) FROM dead_letters"
        ).fetchone()
    return rows, blank


def send_over_api(url: str, messages: list[Hostile]) -> dict[str, int]:
    """POST every message; returns counts of statuses and of rejections the API reported."""
    counts = {"requests": 0, "5xx": 0, "rejected": 0, "accepted": 0}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as client:

        def post(path: str, body: bytes) -> None:
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            counts["requests"] += 1
            counts["5xx"] += response.status_code >= 500
            body_json = response.json()
            counts["rejected"] += body_json.get("rejected", 0)
            counts["accepted"] += body_json.get("accepted", 0) + body_json.get("duplicates", 0)

        for body in batches(messages):
            post("/v1/events/batch", body)
        for i, m in enumerate(m for m in messages if not m.batchable):
            post("/v1/events" if i % 2 else "/v1/events/batch", m.raw)
    return counts


def test_api_ingest_dead_letters_every_hostile_message(tmp_path):
    gw = gateway(tmp_path)
    seed(gw)
    before = snapshot(gw)
    messages = hostile_messages(N, "S1", seed=7)
    with ApiServer(create_app(gw, ApiSettings(token=TOKEN))) as server:
        counts = send_over_api(server.url, messages)
        assert httpx.get(server.url + "/health").status_code == 200  # still serving
    assert counts["5xx"] == 0 and counts["accepted"] == 0
    assert counts["rejected"] == N
    assert dead_letters(gw) == (N, 0)
    assert snapshot(gw) == before and gw.ledger.verify() == []
    gw.close()


def publish_all(broker: Mosquitto, payloads: list[bytes]) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fuzzer")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        infos = [client.publish("shelfcast/S1/events/pos", p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(60)
    finally:
        client.loop_stop()
        client.disconnect()


def wait_for(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def run_mqtt_fuzz(tmp_path, messages: list[Hostile], timeout: float = 60) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (make test installs it)")
    with Mosquitto(tmp_path / "broker") as broker:
        gw = gateway(tmp_path, broker)
        try:
            assert gw.transport.wait_connected(10)
            seed(gw)
            before = snapshot(gw)
            payloads = batches(messages) + [m.raw for m in messages if not m.batchable]
            publish_all(broker, payloads)
            wait_for(lambda: dead_letters(gw)[0] >= len(messages), timeout)
            assert dead_letters(gw) == (len(messages), 0)
            assert gw._worker is not None and gw._worker.is_alive()  # no crash
            assert snapshot(gw) == before and gw.ledger.verify() == []
        finally:
            gw.close()


@pytest.mark.mqtt
def test_mqtt_ingest_dead_letters_every_hostile_message(tmp_path):
    messages = [
        m for m in hostile_messages(N + 1500, "S1", seed=8) if m.category not in RUNTIME_CRASHERS
    ]
    assert len(messages) >= N
    run_mqtt_fuzz(tmp_path, messages[: N + 200])


@pytest.mark.mqtt
@pytest.mark.xfail(
    strict=True,
    reason="edge_runtime bug: parse_events raises TypeError on a dict/list `type` or `source` and "
    "RecursionError on deeply nested JSON, and the ledger raises UnicodeEncodeError on lone "
    "surrogates; on MQTT these payloads are neither stored nor dead-lettered",
)
def test_mqtt_ingest_dead_letters_payloads_the_runtime_crashes_on(tmp_path):
    messages = [m for m in hostile_messages(3000, "S1", seed=9) if m.category in RUNTIME_CRASHERS]
    run_mqtt_fuzz(tmp_path, messages, timeout=15)
