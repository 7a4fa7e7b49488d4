"""The hub end to end: real nats-server (JetStream), real Mosquitto, real gateways, the hub as a
real process: stores' sales reach the network view, an offline gateway catches up, online
reservations are decided by the store's ledger, the fleet is visible, the API needs its token."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway
from tests.hub_process import HubProcess
from tests.mosquitto import wait
from tests.test_mqtt import pub

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
pytest_plugins = ["tests.nats_server"]


def gateway(tmp_path, store, broker, nats_url, **extra):
    env = {
        "SHELFCAST_STORE_ID": store,
        "SHELFCAST_STATE_DIR": str(tmp_path / store),
        "SHELFCAST_UPLINK_INTERVAL_S": "0.02",
        "SHELFCAST_HUB_URL": nats_url,
        "SHELFCAST_HUB_HEARTBEAT_S": "0.5",
        **extra,
    }
    cfg = with_mqtt(
        load_config(env=env),
        host="127.0.0.1",
        port=broker.port,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )
    return Gateway(cfg).start()


# Live events are dated now: the hub's reservations carry the wall clock, and the gateway's
# plausibility bounds refuse an event far behind the ledger's latest one.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def event(store, i, sku, kind, qty, **more):
    return {
        "event_id": f"{store}-e{i}",
        "store_id": store,
        "sku": sku,
        "type": kind,
        "qty": qty,
        "event_time": (T0 + timedelta(seconds=i)).isoformat(),
        "source": "pos",
        **more,
    }


def mqtt_pub(broker, store, payload, source="pos"):
    pub(broker, f"shelfcast/{store}/events/{source}", json.dumps(payload))


def stores_of(hub, sku):
    return {s["store_id"]: s for s in hub.get(f"/v1/availability/{sku}")["stores"]}


def ledger_differences(hub, gateways, skus) -> list[str]:
    """Each store x SKU whose figure in the hub's view is not its ledger's, as a line that
    says both (what a failed wait shows)."""
    out = []
    for sku in skus:
        seen = stores_of(hub, sku)
        for gw in gateways:
            st = gw.stock(sku)
            if st is None:
                continue
            store = gw.cfg.gateway.store_id
            fig = seen.get(store)
            ledger = (st.on_hand, st.reserved, st.available)
            view = None if fig is None else (fig["on_hand"], fig["reserved"], fig["atp"])
            if view != ledger:
                out.append(f"{store} {sku}: view {view}, ledger {ledger}")
    return out


def matches_ledger(hub, gateways, skus):
    """The hub's figure of every store x SKU equals that store's ledger."""
    return not ledger_differences(hub, gateways, skus)


@pytest.fixture
def hub(nats_server, tmp_path):
    proc = HubProcess(nats_server.url, log=tmp_path / "hub.log").start()
    yield proc
    proc.stop()


def test_two_stores_sales_over_mqtt_reach_the_network_view(tmp_path, mosquitto, nats_server, hub):
    gws = [gateway(tmp_path, s, mosquitto, nats_server.url) for s in ("S1", "S2")]
    try:
        for gw in gws:
            assert gw.transport.wait_connected(10)
        mqtt_pub(
            mosquitto,
            "S1",
            [event("S1", 0, "A", "receipt", 10), event("S1", 1, "B", "receipt", 4)],
            "wms",
        )
        mqtt_pub(mosquitto, "S2", event("S2", 0, "A", "receipt", 6), "wms")
        mqtt_pub(mosquitto, "S1", event("S1", 2, "A", "sale", 3))
        mqtt_pub(mosquitto, "S2", event("S2", 1, "A", "sale", 1))
        mqtt_pub(mosquitto, "S2", event("S2", 1, "A", "sale", 1))  # a repeat: changes nothing
        assert wait(lambda: hub.get("/v1/availability/A")["total_atp"] == 12, 20)
        view = hub.get("/v1/availability/A")
        by_store = {s["store_id"]: s for s in view["stores"]}
        assert (by_store["S1"]["on_hand"], by_store["S2"]["on_hand"]) == (7, 5)
        assert all(s["online"] and s["confidence"] > 0 for s in view["stores"])
        assert stores_of(hub, "B")["S1"]["atp"] == 4
        fleet = {f["store_id"]: f for f in hub.get("/v1/fleet")["stores"]}
        assert fleet["S1"]["online"] and fleet["S1"]["bundle_version"] == gws[0].model_version
        assert fleet["S1"]["born_at"] and fleet["S1"]["outbox_depth"] is not None
    finally:
        for gw in gws:
            gw.close()
    # A gateway that stops says so; the hub reports it offline, with its last figure's age.
    assert wait(lambda: not stores_of(hub, "A")["S1"]["online"], 10)
    view = hub.get("/v1/availability/A")
    assert view["total_atp"] == 0 and view["offline_atp_not_counted"] == 12
    assert all(s["figure_age_s"] >= 0 for s in view["stores"])
    fleet = {f["store_id"]: f for f in hub.get("/v1/fleet")["stores"]}
    assert fleet["S2"]["died_at"] is not None and not fleet["S2"]["online"]


def test_the_api_needs_the_hub_token(hub):
    assert httpx.get(hub.url + "/v1/availability/A").status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert httpx.get(hub.url + "/v1/fleet", headers=bad).status_code == 401
    r = httpx.post(hub.url + "/v1/reservations", json={"order_id": "o", "sku": "A", "qty": 1})
    assert r.status_code == 401
    assert httpx.get(hub.url + "/v1/health").status_code == 200


def test_a_gateway_offline_from_the_hub_catches_up_with_nothing_lost_or_doubled(
    tmp_path, mosquitto, nats_server, hub
):
    gw = gateway(tmp_path, "S1", mosquitto, nats_server.url)
    try:
        gw.ingest([event("S1", k, f"K{k}", "receipt", 50) for k in range(20)], "wms")
        assert wait(lambda: matches_ledger(hub, [gw], ["K0", "K19"]), 20)
        nats_server.stop()  # the WAN link to the hub is down; the store keeps selling
        n = 20
        for round_ in range(10):
            for k in range(20):
                gw.ingest(event("S1", n, f"K{k}", "sale", 1 + (round_ + k) % 3), "pos")
                n += 1
            gw.ingest(event("S1", n, f"K{round_}", "reservation", 2, order_id=f"o{round_}"), "ecom")
            n += 1
        assert gw.hub_link.backlog()[0] > 0, "nothing waited for the hub"
        nats_server.start()
        assert gw.hub_link.wait_forwarded(30)
        assert wait(lambda: matches_ledger(hub, [gw], [f"K{k}" for k in range(20)]), 30)
    finally:
        gw.close()


def test_an_online_reservation_for_the_last_unit_racing_a_till_sale_never_oversells(
    tmp_path, mosquitto, nats_server, hub
):
    gw = gateway(tmp_path, "S1", mosquitto, nats_server.url)
    try:
        assert gw.transport.wait_connected(10)
        gw.ingest([event("S1", k, f"L{k}", "receipt", 1) for k in range(8)], "wms")
        assert wait(lambda: matches_ledger(hub, [gw], [f"L{k}" for k in range(8)]), 20)
        answers = {}

        def reserve(k):
            answers[k] = hub.post(
                "/v1/reservations",
                {"order_id": f"web{k}", "sku": f"L{k}", "qty": 1, "store_id": "S1"},
            )

        threads = [threading.Thread(target=reserve, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for k in range(8):  # the till sells the same last units at the same moment
            mqtt_pub(mosquitto, "S1", event("S1", 100 + k, f"L{k}", "sale", 1))
        for t in threads:
            t.join(30)
        assert wait(lambda: all(gw.stock(f"L{k}").on_hand == 0 for k in range(8))), (
            [gw.stock(f"L{k}") for k in range(8)],
            {k: a.text for k, a in answers.items()},
            gw.counters,
        )
        for k in range(8):
            r = answers[k]
            assert r.status_code in (201, 409), r.text
            result = r.json()["result"]
            assert result["store_id"] == "S1" and result["requested"] == 1
            if r.status_code == 409:  # the store's conflict comes back to the caller
                assert result["granted"] == 0 and result["conflict"]["kind"] == "reservation_short"
        # Whichever came first, no unit is promised that is not on the shelf...
        skus = [f"L{k}" for k in range(8)]
        assert all(gw.stock(s).available == 0 for s in skus)
        # ...a promise the till broke is reported as a conflict, and the hub sees the same book.
        granted = [k for k in range(8) if answers[k].status_code == 201]
        assert wait(lambda: matches_ledger(hub, [gw], skus), 20)
        for k in granted:  # the reservation won, then the sale took the unit: the store says so
            assert wait(lambda k=k: stores_of(hub, f"L{k}")["S1"]["last_conflict"] is not None)
        view = hub.get("/v1/availability/L0")
        assert view["total_atp"] == 0
        # An offline store is never routed to.
        r = hub.post("/v1/reservations", {"order_id": "x", "sku": "L0", "qty": 1, "store_id": "S9"})
        assert r.status_code == 503 and "offline" in r.json()["detail"]
    finally:
        gw.close()
