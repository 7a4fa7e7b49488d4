"""A full disk stops intake and loses nothing: real Mosquitto, real SQLite on a small tmpfs.

While the ledger refuses writes, MQTT payloads stay unacknowledged and held, ``/ready`` answers
503 naming the ledger, HTTP ingest answers 503, the metric and the retained state say so; once
space returns the gateway applies the held payloads itself, without a restart or a redelivery.
A store error is never a dead letter."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer
from tests.mosquitto import Subscriber, wait
from tests.small_disk import fill
from tests.test_gateway import config, event, mqtt_pub
from tests.test_store_failure import allow_writes, refuse_writes

pytestmark = pytest.mark.mqtt
TOKEN = "test-token-123456"


def batch(n: int, size: int = 50) -> list[dict]:
    return [
        {**event(n * size + k, f"K{k}", "sale", 1), "event_id": f"b{n}-{k}"} for k in range(size)
    ]


def state_of(watch: Subscriber) -> dict:
    return json.loads(watch.received[-1][1])


def test_a_full_disk_pauses_intake_and_it_resumes_without_a_restart(small_disk, mosquitto):
    cfg = config(small_disk, mosquitto)
    watch = Subscriber(mosquitto, ["shelfcast/S1/state"], client_id="state-watch")
    gw = Gateway(cfg).start()
    server = ApiServer(create_app(gw, ApiSettings(token=TOKEN))).start()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        assert gw.transport.wait_connected(10)
        seed = [{**event(k, f"K{k}", "receipt", 1000), "event_id": f"r{k}"} for k in range(50)]
        mqtt_pub(mosquitto, seed, "wms")
        assert wait(lambda: gw.ledger.event_count() == 50, 10)
        assert api.get("/ready").status_code == 200
        filler = fill(small_disk)
        for n in range(60):  # the WAL reuses its pages for a while; then the disk refuses
            mqtt_pub(mosquitto, batch(n))
        assert wait(lambda: "ledger" in gw.problems(), 20), "the full disk was never noticed"
        stuck = gw.ledger.event_count()
        assert stuck < 50 + 60 * 50

        ready = api.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["ledger"].startswith("failing")
        post = api.post("/v1/events/batch", json=batch(99, 2000))  # needs more than is free
        assert post.status_code == 503 and "retry later" in post.json()["message"]
        metrics = api.get("/metrics").text
        assert "shelfcast_ledger_writable 0.0" in metrics
        assert wait(lambda: state_of(watch)["status"] == "degraded", 10)
        assert any("ledger" in p for p in state_of(watch)["problems"])
        assert gw.ledger.verify() == []  # memory at the last commit, whatever SQLite did
        assert gw.ledger.dead_letters() == []

        filler.unlink()  # space returns: no restart, no reconnect
        assert wait(lambda: gw.ledger.event_count() == 50 + 60 * 50, 30), (
            f"intake did not resume: {gw.ledger.event_count()} events"
        )
        assert gw.transport.connects == 1
        assert gw.ledger.verify() == [] and gw.ledger.dead_letters() == []
        assert all(gw.stock(f"K{k}").on_hand == 1000 - 60 for k in range(50))
        assert wait(lambda: api.get("/ready").status_code == 200, 10)
        assert wait(lambda: state_of(watch)["status"] == "online", 10)
        assert api.post("/v1/events/batch", json=[event(9000, "Z", "receipt", 1)]).is_success
    finally:
        api.close()
        server.stop()
        gw.close()
        watch.close()


def test_a_store_error_is_never_a_dead_letter_and_nothing_is_acknowledged(tmp_path, mosquitto):
    """Without the fix an IntegrityError from the store (what two writers produced) sent the
    payload down the poison path: dead-lettered, then acknowledged, i.e. lost."""
    gw = Gateway(config(tmp_path, mosquitto)).start()
    try:
        assert gw.transport.wait_connected(10)
        mqtt_pub(mosquitto, event(0, "A", "receipt", 5), "wms")
        assert wait(lambda: gw.ledger.event_count() == 1, 10)
        refuse_writes(gw.ledger.connection, "events")  # a constraint of the log, not the event
        mqtt_pub(mosquitto, [event(1, "A", "sale", 1), event(2, "B", "receipt", 3)])
        assert wait(lambda: "ledger" in gw.problems(), 10)
        with pytest.raises(sqlite3.OperationalError):  # HTTP and MQTT: the same store error
            gw.ingest(json.dumps(event(3, "C", "receipt", 1)), "api")
        assert gw.ledger.dead_letters() == [] and gw.counters["rejected"] == 0
        allow_writes(gw.ledger.connection, "events")
        assert wait(lambda: gw.ledger.event_count() == 3, 10)
        assert gw.stock("A").on_hand == 4 and gw.stock("B").on_hand == 3
        assert gw.ledger.dead_letters() == [] and gw.ledger.verify() == []
        assert wait(lambda: not gw.problems(), 10)
    finally:
        gw.close()
