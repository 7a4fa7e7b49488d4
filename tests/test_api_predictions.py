"""Forecast and stock-out prediction through the API, from the forecasts the gateway's decision
policy decides with (``edge_runtime.decide.forecast_policy``), on real uvicorn over a real gateway."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.config import load_config
from edge_runtime.decide.forecast_policy import DailyForecasts, ForecastDecisionPolicy
from edge_runtime.decide.stockout import stockout_risk
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer

TOKEN = "predict-token-0123456"
SKUS = ["A", "B", "C"]


def forecasting_gateway(state_dir, skus=SKUS) -> Gateway:
    """A gateway whose policy holds 7 closes x 14 horizons of daily forecasts per SKU."""
    mean = np.broadcast_to(
        np.arange(1, len(skus) + 1, dtype=float)[:, None, None], (len(skus), 7, 14)
    )
    forecasts = DailyForecasts(list(skus), np.datetime64("2026-01-01"), mean.copy(), 2 * mean)
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(state_dir)}
    cfg = load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})
    gw = Gateway(cfg, policy=ForecastDecisionPolicy("S1", forecasts, "m7", lead_time_days=2))
    gw.ingest(
        [
            {"event_id": "r-A", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 3,
             "event_time": "2026-01-03T08:00:00+00:00", "source": "wms"},
            {"event_id": "r-B", "store_id": "S1", "sku": "B", "type": "receipt", "qty": 500,
             "event_time": "2026-01-03T08:00:00+00:00", "source": "wms"},
        ],
        "seed",
    )  # fmt: skip
    return gw


@pytest.fixture
def url(tmp_path):
    gw = forecasting_gateway(tmp_path / "state")
    with ApiServer(create_app(gw, ApiSettings(token=TOKEN))) as server:
        yield server.url
    gw.close()


def test_one_sku_gets_forecast_and_stockout_risk(url):
    got = httpx.get(url + "/v1/predictions/A", params={"horizon_days": 3}).json()
    want = stockout_risk(np.array([1.0]), np.array([2.0]), np.array([3.0]), 3.0)
    assert got["mean_daily"] == 1.0 and got["p90_daily"] == 2.0 and got["atp"] == 3.0
    assert got["demand_over_horizon"] == 3.0
    assert got["stockout_probability"] == pytest.approx(float(want.probability[0]))
    assert got["expected_days_to_stockout"] == pytest.approx(3.0)
    assert got["model_version"] == "m7" and got["scored_days"] == 14


def test_a_horizon_beyond_the_scored_days_says_how_much_is_extended(url):
    got = httpx.get(url + "/v1/predictions/C", params={"horizon_days": 28}).json()
    assert got["scored_days"] == 14 and got["horizon_days"] == 28
    assert got["mean_daily"] == 3.0 and got["demand_over_horizon"] == 84.0


def test_a_batch_lists_unknown_skus_and_scores_the_rest(url):
    body = {"skus": ["B", "C", "nope"], "horizon_days": 2}
    got = httpx.post(url + "/v1/predictions", json=body).json()
    assert got["unknown_skus"] == ["nope"]
    b, c = got["items"]
    assert b["sku"] == "B" and b["stockout_probability"] < 1e-6  # 500 units against ~2/day
    assert c["sku"] == "C" and c["atp"] is None and c["stockout_probability"] is None
    assert httpx.get(url + "/v1/predictions/nope").status_code == 404
    metrics = httpx.get(url + "/metrics").text
    assert 'shelfcast_scoring_latency_seconds_count{what="batch"} 1.0' in metrics


def test_bad_prediction_requests_say_what_was_wrong(url):
    response = httpx.post(url + "/v1/predictions", json={"skus": [], "horizon_days": 0})
    assert response.status_code == 422
    assert set(response.json()["where"]) == {"body.skus", "body.horizon_days"}


def column_model(column: int, width: int) -> bytes:
    """A real ONNX demand model whose mean (and P50) is one input column and P90 twice it."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])
    outs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [None]) for n in ("mean", "p50", "p90")
    ]
    inits = [
        numpy_helper.from_array(np.array([column], dtype=np.int64), "col"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2.0], dtype=np.float32), "two"),
    ]
    nodes = [
        helper.make_node("Gather", ["X", "col"], ["g"], axis=1),
        helper.make_node("Squeeze", ["g", "axis1"], ["mean"]),
        helper.make_node("Identity", ["mean"], ["p50"]),
        helper.make_node("Mul", ["mean", "two"], ["p90"]),
    ]
    graph = helper.make_graph(nodes, "column", [x], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def column_bundle_archive(tmp_path) -> bytes:
    """A signed ``.tar.gz`` bundle whose demand model forecasts the SKU's last 7 days' mean."""
    import io
    import tarfile

    from feature_store.spec import ANOMALY_FEATURES, index, names, spec_dict
    from tests.signed_bundles import signed_bundle
    from tests.test_api_bundle import onnx_model

    models = {"demand": column_model(index("mean_7"), len(names())),
              "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"])}  # fmt: skip
    root = signed_bundle(
        tmp_path / "build" / "col-1", models, spec_dict(), {"model_version": "col-1"}
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(root, arcname=root.name)
    return buf.getvalue()


def test_predictions_from_an_uploaded_bundle_score_the_ledgers_own_sales(tmp_path):

    from tests.signed_bundles import public_key_env

    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
           **public_key_env()}  # fmt: skip
    gw = Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"}))
    day = "2026-01-{:02d}T12:00:00+01:00".format
    events = [{"event_id": "r", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 100,
               "event_time": day(1), "source": "wms"}]  # fmt: skip
    events += [{**events[0], "event_id": f"s{d}", "type": "sale", "qty": 2, "event_time": day(d),
                "source": "pos"} for d in range(1, 11)]  # fmt: skip
    events += [{**events[0], "event_id": "ret", "type": "return", "qty": 1, "event_time": day(9)},
               {**events[0], "event_id": "today", "type": "receipt", "qty": 1, "event_time": day(11)}]  # fmt: skip
    assert gw.ingest(events, "seed").accepted == len(events)
    archive = column_bundle_archive(tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with ApiServer(create_app(gw, ApiSettings(token=TOKEN))) as server:
        assert httpx.get(server.url + "/v1/predictions/A").status_code == 503  # no bundle yet
        assert (
            httpx.put(server.url + "/v1/bundle", content=archive, headers=auth).status_code == 200
        )
        got = httpx.get(server.url + "/v1/predictions/A", params={"horizon_days": 2}).json()
        missing = httpx.get(server.url + "/v1/predictions/NOPE")
    gw.close()
    # closed days are Jan 1..10 (the clock is on the 11th); the last 7: 2 a day, 1 on the 9th
    assert got["mean_daily"] == pytest.approx(13 / 7, rel=1e-6)
    assert got["p90_daily"] == pytest.approx(26 / 7, rel=1e-6)
    assert got["atp"] == 100 - 20 + 1 + 1 and got["model_version"] == "col-1"
    assert got["stockout_probability"] < 1e-6
    assert missing.status_code == 404


def test_predictions_are_served_right_after_a_bundle_swap_before_any_close(tmp_path):
    """A new store: events of its first day only, so no day has closed. Right after the bundle
    is installed the endpoint answers 200: each SKU the ledger knows is ``no_history`` (no
    demand figures yet; an empty SKU is certain to be out), never 503 for the whole route."""

    from tests.signed_bundles import public_key_env

    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    gw = Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false", **public_key_env()}))
    first = {"event_id": "r", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 5,
             "event_time": "2026-01-05T09:00:00+01:00", "source": "wms"}  # fmt: skip
    gw.ingest([first, {**first, "event_id": "rb", "sku": "B"},
               {**first, "event_id": "sb", "sku": "B", "type": "sale", "source": "pos"}], "pos")  # fmt: skip
    archive = column_bundle_archive(tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with ApiServer(create_app(gw, ApiSettings(token=TOKEN))) as server:
        swapped = httpx.put(server.url + "/v1/bundle", content=archive, headers=auth)
        assert swapped.status_code == 200 and gw.forecasts is None  # nothing closed to score
        one = httpx.get(server.url + "/v1/predictions/A")
        batch = httpx.post(server.url + "/v1/predictions", json={"skus": ["B", "A", "nope"]})
        missing = httpx.get(server.url + "/v1/predictions/nope")
    gw.close()
    assert one.status_code == 200 and batch.status_code == 200
    a = one.json()
    assert a["status"] == "no_history" and a["mean_daily"] is None and a["atp"] == 5.0
    assert a["stockout_probability"] is None  # in stock, and no demand known yet
    assert a["model_version"] == "col-1"
    got = batch.json()
    assert [i["sku"] for i in got["items"]] == ["B", "A"] and got["unknown_skus"] == ["nope"]
    assert got["items"][0]["stockout_probability"] == 1.0  # B: 5 in, 5 sold
    assert missing.status_code == 404
