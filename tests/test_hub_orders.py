"""``POST /v1/orders`` end to end: real nats-server (JetStream), real Mosquitto, two real store
gateways, the hub as real processes. An order is planned, reserved in the chosen store's ledger
and published with its reason codes; when the store's last unit was sold at the till after the
hub's figure was taken, the store refuses and the order is routed around it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime

import httpx
import pytest

from hub.network_view import NetworkView, sku_key
from hub.streams import DECISIONS_STREAM, ensure
from tests.hub_process import HubProcess
from tests.mosquitto import wait
from tests.test_hub import event, gateway, matches_ledger

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
pytest_plugins = ["tests.nats_server"]

LOS_ANGELES = {"lat": 34.05, "lon": -118.24}
NETWORK = {
    "stores": {"S1": LOS_ANGELES, "S2": {"lat": 33.84, "lon": -117.91}},  # S2: Anaheim
    "dcs": {"DC_CA": {"lat": 34.00, "lon": -117.52}},
}


async def decisions(url: str, count: int) -> list[dict]:
    import nats

    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().pull_subscribe("shelfcast._hub.order_decision", "test")
        msgs = await sub.fetch(count, timeout=5)
        return [json.loads(m.data) for m in msgs]
    finally:
        await nc.close()


def test_orders_are_planned_reserved_in_stores_rerouted_on_refusal_and_published(
    tmp_path, mosquitto, nats_server
):
    network = tmp_path / "network.json"
    network.write_text(json.dumps(NETWORK))
    # The API without workers, and one worker process: stopping it freezes the hub's view.
    api = HubProcess(nats_server.url, workers=0, network=network, log=tmp_path / "api.log")
    worker = HubProcess(nats_server.url, api=False, log=tmp_path / "worker.log")
    gws = []
    try:
        worker.start()  # does not wait: it starts while the API process comes up
        api.start()
        gws = [gateway(tmp_path, s, mosquitto, nats_server.url) for s in ("S1", "S2")]
        gws[0].ingest([event("S1", 0, "A", "receipt", 3), event("S1", 1, "B", "receipt", 5)], "wms")
        gws[1].ingest(
            [event("S2", 0, "A", "receipt", 10), event("S2", 1, "B", "receipt", 10)], "wms"
        )
        assert wait(lambda: matches_ledger(api, gws, ["A", "B"]), 20)
        assert wait(lambda: all(f["online"] for f in api.get("/v1/fleet")["stores"]), 10)

        body = {
            "order_id": "web1",
            "lines": [{"sku": "B", "qty": 2}],
            "delivery": LOS_ANGELES,
            "promised_date": "2030-01-01",
        }
        r = api.post("/v1/orders", body)
        assert r.status_code == 201, r.text
        plan = r.json()
        assert plan["plan_kind"] == "store" and plan["shipments"][0]["location_id"] == "S1"
        assert plan["shipments"][0]["lines"] == [{"sku": "B", "qty": 2.0, "granted": 2.0}]
        assert plan["reason_codes"][0] == "SHIP_FROM_STORE" and "SAME_DAY" in plan["reason_codes"]
        assert gws[0].stock("B").reserved == 2  # the store's ledger holds the promise

        worker.stop()  # the hub's figure of S1 now lags its ledger...
        gws[0].ingest(event("S1", 2, "A", "sale", 3), "pos")  # ...as the till sells every A
        today = datetime.now(UTC).date().isoformat()  # due today: S1 is the only same-day store
        lines = [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 1}]
        r = api.post(
            "/v1/orders", {**body, "order_id": "web2", "lines": lines, "promised_date": today}
        )
        assert r.status_code == 201, r.text
        plan = r.json()
        assert plan["refused_by"] == ["S1"] and plan["attempts"] == 2
        assert "REROUTED_AFTER_REFUSAL" in plan["reason_codes"]
        said = [(c["store_id"], c["sku"], c["kind"], c["granted"]) for c in plan["store_conflicts"]]
        assert said == [("S1", "A", "reservation_short", 0)]  # the store's conflict, to the caller
        assert {s["location_id"] for s in plan["shipments"]} <= {"S2", "DC_CA"}
        assert gws[0].stock("A").reserved == 0 and gws[0].stock("A").on_hand == 0
        # S1 granted B before it refused A: that unit is released, web1's two stay reserved.
        assert wait(lambda: gws[0].stock("B").reserved == 2, 10), gws[0].stock("B")

        published = asyncio.run(decisions(nats_server.url, 2))
        assert [d["order_id"] for d in published] == ["web1", "web2"]
        assert published[1]["reason_codes"] == plan["reason_codes"]
        assert all(d["kind"] == "order_decision" and d["schema"] == 1 for d in published)

        assert httpx.post(api.url + "/v1/orders", json=body).status_code == 401
        twice = {**body, "lines": [{"sku": "B", "qty": 1}, {"sku": "B", "qty": 1}]}
        assert api.post("/v1/orders", twice).status_code == 422
    finally:
        for gw in gws:
            gw.close()
        worker.stop()
        api.stop()


def test_the_view_keeps_a_stores_reorder_point_as_its_lead_time_demand(nats_server):
    alert = {"kind": "replenishment", "store_id": "S1", "sku": "A", "reorder_point": 7.5,
             "order_up_to": 20, "recommended_qty": 12, "confidence": 0.8}  # fmt: skip

    async def scenario():
        import nats

        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await ensure(js)
        view = await NetworkView(js).open()
        await view.apply("shelfcast.S1.replenishment", {}, json.dumps(alert).encode())
        figure = (await view.stock.read(sku_key("S1", "A")))[1]
        await nc.close()
        return figure

    figure = asyncio.run(scenario())
    assert figure["reorder_point"] == 7.5 and figure["ledger_confidence"] == 0.8


def test_a_resent_order_gets_its_first_plan_and_a_late_store_grant_is_released(
    tmp_path, mosquitto, nats_server
):
    """Sending an order again (after a lost answer, or twice at once) reserves nothing more and
    answers the first plan; a different order under a used id is refused. A store that grants
    after the hub stopped waiting (its disk stalled) gets the units released again."""
    network = tmp_path / "network.json"
    network.write_text(json.dumps(NETWORK))
    api = HubProcess(
        nats_server.url, network=network, reservation_timeout=1.0, log=tmp_path / "api.log"
    )
    gws = []
    try:
        api.start()
        gws = [gateway(tmp_path, s, mosquitto, nats_server.url) for s in ("S1", "S2")]
        gws[0].ingest([event("S1", 0, "A", "receipt", 3), event("S1", 1, "B", "receipt", 5)], "wms")
        gws[1].ingest(event("S2", 0, "A", "receipt", 10), "wms")
        assert wait(lambda: matches_ledger(api, gws, ["A", "B"]), 20)
        assert wait(lambda: all(f["online"] for f in api.get("/v1/fleet")["stores"]), 10)

        today = datetime.now(UTC).date().isoformat()
        body = {"order_id": "web:7", "lines": [{"sku": "B", "qty": 2}],
                "delivery": LOS_ANGELES, "promised_date": today}  # fmt: skip
        first = api.post("/v1/orders", body)
        assert first.status_code == 201, first.text
        again = api.post("/v1/orders", body)  # the client lost the answer and sends it again
        assert again.status_code == 201 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        twice = {**body, "order_id": "web8"}
        both = asyncio.run(_post_together(api.url + "/v1/orders", twice, api.headers()))
        assert [r.status_code for r in both] == [201, 201]
        assert both[0].json()["message_id"] == both[1].json()["message_id"]
        assert wait(lambda: matches_ledger(api, gws, ["B"]), 10)
        assert gws[0].stock("B").reserved == 4  # 2 for web:7, 2 for web8: nothing twice
        other = {**body, "lines": [{"sku": "B", "qty": 1}]}
        r = api.post("/v1/orders", other)
        assert r.status_code == 422 and "already used" in r.text

        # S1's ledger is locked (a stalled disk): it answers after the hub's 1 s timeout.
        stall = sqlite3.connect(gws[0].cfg.ledger_path, timeout=10)
        stall.execute("BEGIN IMMEDIATE")
        try:
            late = api.post("/v1/orders", {**body, "order_id": "web9", "lines": [A_ONE]})
        finally:
            stall.rollback()
            stall.close()
        assert late.status_code == 201, late.text
        assert late.json()["refused_by"] == ["S1"]
        assert late.json()["shipments"][0]["location_id"] == "S2"
        assert wait(lambda: gws[1].stock("A").reserved == 1, 10)
        # S1 granted web9's unit once the lock went; the hub gave it back.
        assert wait(lambda: _reservation_applied(gws[0], "ecom-web9-A-a1"), 10)
        assert wait(lambda: gws[0].stock("A").reserved == 0, 10), gws[0].stock("A")

        published = asyncio.run(decisions(nats_server.url, 3))  # one decision per order
        assert sorted(d["order_id"] for d in published) == ["web8", "web9", "web:7"]
        assert asyncio.run(_decision_count(nats_server.url)) == 3
    finally:
        for gw in gws:
            gw.close()
        api.stop()


A_ONE = {"sku": "A", "qty": 1}


async def _decision_count(url: str) -> int:
    import nats

    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(DECISIONS_STREAM)).state.messages
    finally:
        await nc.close()


async def _post_together(url: str, body: dict, headers: dict) -> list[httpx.Response]:
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        return list(await asyncio.gather(*(client.post(url, json=body) for _ in range(2))))


def _reservation_applied(gw, event_id: str) -> bool:
    with sqlite3.connect(gw.cfg.ledger_path) as conn:
        row = conn.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone()
    return row is not None
