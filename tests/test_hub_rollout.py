"""Model rollout through the hub, end to end: real nats-server (JetStream, its object store), the
hub as a real process, real gateways verifying real signed ONNX bundles. A good bundle goes to a
canary, then to every store; a canary whose error rate or forecast error crosses its threshold,
or that refuses the bundle, halts the rollout and the canaries go back to the bundle they had."""

from __future__ import annotations

import pytest

from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from feature_store.spec import ANOMALY_FEATURES, names, spec_dict
from tests.hub_process import HubProcess
from tests.mosquitto import wait
from tests.signed_bundles import onnx_model, public_key_env, signed_bundle
from tests.tampered_bundles import CASES, constant_demand_model
from tests.test_gateway_model import demand_bundle

pytestmark = [pytest.mark.slow]
pytest_plugins = ["tests.nats_server"]

FAST = {"observe_s": 1.0, "min_events": 5, "install_timeout_s": 30}


def event(store, eid, sku, kind, qty, day):
    return {"event_id": f"{store}-{eid}", "store_id": store, "sku": sku, "type": kind,
            "qty": qty, "event_time": f"2026-01-{day:02d}T10:00:00+00:00",
            "source": "wms" if kind == "receipt" else "pos"}  # fmt: skip


def history(store, days=range(1, 9)):
    """A receipt and two units sold a day: closed days for the bundle to forecast from."""
    out = [event(store, "r", "A", "receipt", 500, 1)]
    return out + [event(store, f"s{d}", "A", "sale", 2, d) for d in days]


def gateway(tmp_path, store, nats_url, bundle):
    env = {
        "SHELFCAST_STORE_ID": store,
        "SHELFCAST_STATE_DIR": str(tmp_path / store),
        "SHELFCAST_MQTT_ENABLED": "false",
        "SHELFCAST_HUB_URL": nats_url,
        "SHELFCAST_HUB_HEARTBEAT_S": "0.3",
        "SHELFCAST_BUNDLE": str(bundle),
        **public_key_env(),
    }
    gw = Gateway(load_config(env=env)).start()
    gw.ingest(history(store), "pos")
    return gw


@pytest.fixture
def hub(nats_server, tmp_path):
    proc = HubProcess(nats_server.url, log=tmp_path / "hub.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def stores(tmp_path, nats_server, hub, request):
    v1 = demand_bundle(tmp_path / "bundles" / "v1")
    gws = {s: gateway(tmp_path, s, nats_server.url, v1) for s in request.param}
    try:
        assert wait(lambda: len(hub.get("/v1/fleet")["stores"]) == len(gws), 20)
        yield gws
    finally:
        for gw in gws.values():
            gw.close()


def roll_out(hub, bundle, canaries, **thresholds):
    r = hub.post(
        "/v1/rollouts",
        {"bundle_path": str(bundle), "canaries": canaries, "thresholds": {**FAST, **thresholds}},
    )
    assert r.status_code == 201, r.text
    return r.json()["rollout_id"]


def ended(hub, rid):
    return hub.get(f"/v1/rollouts/{rid}")["phase"] in ("promoted", "rolled_back")


def versions(hub):
    return {f["store_id"]: f["bundle_version"] for f in hub.get("/v1/fleet")["stores"]}


@pytest.mark.parametrize("stores", [("S1", "S2", "S3")], indirect=True)
def test_a_good_bundle_goes_to_the_canary_then_to_every_store(tmp_path, hub, stores):
    v2 = demand_bundle(tmp_path / "bundles" / "v2")
    rid = roll_out(hub, v2, ["S1"])
    assert wait(lambda: hub.get(f"/v1/rollouts/{rid}")["phase"] == "observing", 15)
    assert stores["S1"].model_version == "v2" and stores["S2"].model_version == "v1"
    assert wait(lambda: ended(hub, rid), 20)
    status = hub.get(f"/v1/rollouts/{rid}")
    assert status["phase"] == "promoted", status
    assert {s: st["report"]["state"] for s, st in status["stores"].items()} == {
        "S1": "installed", "S2": "installed", "S3": "installed"
    }  # fmt: skip
    assert all(gw.model_version == "v2" for gw in stores.values())
    assert wait(lambda: set(versions(hub).values()) == {"v2"}, 10), versions(hub)
    assert hub.get("/v1/fleet")["rollout"]["phase"] == "promoted"


@pytest.mark.parametrize("stores", [("S1", "S2")], indirect=True)
def test_a_canary_whose_forecast_error_crosses_the_threshold_goes_back(tmp_path, hub, stores):
    """The new bundle forecasts 40 units a day for a SKU that sells 2: its first closed day
    halts the rollout, the canary goes back to v1 and S2 never gets it."""
    models = {
        "demand": constant_demand_model(len(names()), 40.0),
        "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"]),
    }
    bad = signed_bundle(tmp_path / "v2-bad", models, spec_dict(), {"model_version": "v2-bad"})
    rid = roll_out(hub, bad, ["S1"], observe_s=120)
    canary = stores["S1"]
    assert wait(lambda: hub.get(f"/v1/rollouts/{rid}")["phase"] == "observing", 15)
    assert canary.model_version == "v2-bad"
    canary.ingest([event("S1", "s9", "A", "sale", 2, 9), event("S1", "s10", "A", "sale", 2, 10)])
    assert wait(lambda: ended(hub, rid), 20)
    status = hub.get(f"/v1/rollouts/{rid}")
    assert status["phase"] == "rolled_back" and "forecast error" in status["reason"], status
    assert status["stores"]["S1"]["report"]["state"] == "rolled_back"
    assert canary.model_version == "v1" and stores["S2"].model_version == "v1"
    assert "S2" not in status["stores"]


@pytest.mark.parametrize("stores", [("S1", "S2", "S3")], indirect=True)
def test_a_canary_with_errors_above_the_threshold_sends_every_canary_back(tmp_path, hub, stores):
    v2 = demand_bundle(tmp_path / "bundles" / "v2")
    rid = roll_out(hub, v2, ["S1", "S2"], observe_s=120, max_error_rate=0.1)
    assert wait(lambda: hub.get(f"/v1/rollouts/{rid}")["phase"] == "observing", 15)
    again = hub.post("/v1/rollouts", {"bundle_path": str(v2), "canaries": ["S3"]})
    assert again.status_code == 409 and rid in again.text  # one rollout at a time
    # S2's tills now send events its ledger refuses (a negative sale): 10 of 12 are errors.
    good = [event("S2", f"ok{k}", "A", "sale", 1, 9) for k in range(2)]
    refused = [event("S2", f"bad{k}", "A", "sale", -5, 9) for k in range(10)]
    stores["S2"].ingest(good + refused)
    assert stores["S2"].counters["rejected"] >= 10
    assert wait(lambda: ended(hub, rid), 20)
    status = hub.get(f"/v1/rollouts/{rid}")
    assert status["phase"] == "rolled_back" and "canary S2: error rate" in status["reason"], status
    assert all(gw.model_version == "v1" for gw in stores.values())
    assert "S3" not in status["stores"]


@pytest.mark.parametrize("stores", [("S1", "S2")], indirect=True)
def test_a_bundle_the_canary_refuses_halts_the_rollout(tmp_path, hub, stores):
    forged = CASES["edited_metadata_other_key"](tmp_path / "bundles" / "forged")
    rid = roll_out(hub, forged, ["S1"])
    assert wait(lambda: ended(hub, rid), 20)
    status = hub.get(f"/v1/rollouts/{rid}")
    assert status["phase"] == "rolled_back" and "refused the bundle" in status["reason"], status
    assert all(gw.model_version == "v1" for gw in stores.values())
    # The API says what is wrong with a bad request.
    r = hub.post("/v1/rollouts", {"canaries": ["S1"]})
    assert r.status_code == 422 and "exactly one" in r.text
