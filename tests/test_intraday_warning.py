"""The gateway's intraday stock-out warning on real FreshRetailNet rows: the gateway computes the
training features from its events, predicts each hour once by the watermark, applies late events
in event-time order, and publishes one alert per episode over real Mosquitto."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow.parquet as pq
import pytest

from edge_runtime.config import load_config
from edge_runtime.decide.intraday_warning import MODEL, IntradayWarner
from edge_runtime.gateway import Gateway
from edge_runtime.messages import parse_message
from edge_runtime.store.events import parse_events
from feature_store.intraday import FEATURES, HISTORY_DAYS, WARNING_HOURS, today_features
from feature_store.spec import ANOMALY_FEATURES, names, spec_dict
from tests.signed_bundles import key_pair, onnx_model, signed_bundle
from training import stockout_warning as sw
from training.freshretailnet import DAILY, in_till_units, load_hourly
from twin.stockout_replay import AlertCollector, at, replay_store, store_stream

pytestmark = pytest.mark.realdata
LIVE = 62  # the first replayed day: the 14 before it seed the gateway


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """Every day of 8 real products of one store, in till units."""
    from configuration.data_dir import available, require

    if not available(DAILY):
        pytest.skip(f"real data absent: {DAILY}")
    table = pq.read_table(require(DAILY), filters=[("store_id", "=", 0)])
    keep = np.unique(table["product_id"].to_numpy())[:8]
    path = tmp_path_factory.mktemp("frn") / "daily.parquet"
    pq.write_table(table.filter(np.isin(table["product_id"].to_numpy(), keep)), path)
    return in_till_units(load_hourly(path))


@pytest.fixture(scope="module")
def bundle(panel, tmp_path_factory):
    """A signed bundle whose ``stockout_4h`` is a LightGBM model trained on the fixture's days
    before the replayed ones (tiny demand and anomaly models beside it)."""
    rows = sw.warning_rows(panel)
    train = rows.take(rows.day < LIVE)
    model = sw.fit(train, n_estimators=30, min_child_samples=20)
    models = {
        "demand": onnx_model(len(names()), ["mean", "p50", "p90"]),
        "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"]),
        MODEL: sw.to_onnx(model, len(FEATURES)),
    }
    out = tmp_path_factory.mktemp("bundle") / "b"
    return signed_bundle(
        out, models, spec_dict(), {"model_version": "w1", MODEL: {"threshold": 0.2}}
    )


def _gateway(tmp_path, bundle, **env):
    base = {
        "SHELFCAST_STORE_ID": "0",
        "SHELFCAST_STATE_DIR": str(tmp_path / "gw"),
        "SHELFCAST_BUNDLE": str(bundle),
        "SHELFCAST_MODEL_PUBLIC_KEY": str(key_pair()[1]),
        "SHELFCAST_MQTT_ENABLED": "false",
    }
    return Gateway(load_config(env={**base, **env}))


def test_the_gateway_scores_what_training_computes(panel, bundle, tmp_path):
    """Events in, one prediction per in-stock SKU and complete trading hour, equal to the
    batch features of the same day scored by the same ONNX model; a late till changes nothing."""
    stream = store_stream(panel, np.arange(panel.n_series), LIVE, 1)
    day0 = int(panel.dates[0].astype("datetime64[D]").astype(np.int64))
    gw = _gateway(tmp_path, bundle)
    try:
        gw.seed_history(stream.history)
        for source, batch in stream.live:
            gw.ingest(batch, source)
        # The next morning's first sale completes the live day's last hours.
        gw.ingest([_sale("next-day", str(panel.product[0]), day0 + LIVE + 1, 9)], "pos")
        preds = list(gw.intraday.predictions)
        episodes = dict(gw.intraday.episodes)
    finally:
        gw.close()
    again = _gateway(tmp_path, bundle)  # a restart refills the window from the ledger
    try:
        assert again.intraday.episodes == episodes and episodes
    finally:
        again.close()
    wd = sw.weekdays(panel)
    win = slice(LIVE - HISTORY_DAYS, LIVE + 1)
    X = today_features(panel.sales[:, win], panel.out[:, win], panel.discount[:, win],
                       panel.activity[:, win], wd[win], list(WARNING_HOURS))  # fmt: skip
    want = {}
    onnx = bundle.joinpath(f"{MODEL}.onnx").read_bytes()
    for k, h in enumerate(WARNING_HOURS):
        instock = np.flatnonzero(panel.out[:, LIVE, h] == 0)
        for i, p in zip(instock, sw.onnx_probability(onnx, X[k][instock]), strict=True):
            want[(str(panel.product[i]), day0 + LIVE, h)] = p
    got = {(p.sku, p.day, p.hour): p.probability for p in preds if p.day == day0 + LIVE}
    assert set(got) == set(want) and len(got) > 40
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), atol=1e-6)


def _sale(eid: str, sku: str, day: int, hour: int, minute: int = 30, qty: int = 5) -> dict:
    return {"event_id": eid, "store_id": "0", "sku": sku, "type": "sale", "qty": qty,
            "event_time": at(day, hour, minute), "source": "pos"}  # fmt: skip


def _warner(seen: list) -> IntradayWarner:
    def score(X):
        seen.append(X.copy())
        return np.full(len(X), 0.9)

    return IntradayWarner("0", score, "m", threshold=0.5, lateness_s=900)


def _feed(w: IntradayWarner, events: list[dict]) -> list:
    parsed, rejected = parse_events(events, store_id="0")
    assert not rejected
    return w.observe(parsed)


def test_an_hour_is_predicted_once_the_watermark_passes_it_and_late_events_count_later():
    seen: list = []
    w = _warner(seen)
    day = 19_800
    # Fifteen days of one sale at 10:30 each: history enough for a prediction on the last day.
    _feed(w, [_sale(f"h{d}", "A", day + d, 10) for d in range(HISTORY_DAYS)])
    last = day + HISTORY_DAYS
    _feed(w, [_sale("a", "A", last, 10)])  # watermark 10:15: hour 9 complete, not 10
    assert [(p.hour) for p in w.predictions if p.day == last] == [6, 7, 8, 9]
    _feed(w, [_sale("early", "A", last, 11, 10)])  # watermark 10:55: hour 10 not complete yet
    assert [p.hour for p in w.predictions if p.day == last][-1] == 9
    alerts = _feed(w, [_sale("b", "A", last, 11, 20)])  # watermark 11:05: hour 10 complete
    assert [p.hour for p in w.predictions if p.day == last][-1] == 10
    assert [a.episode for a in alerts] == [] and set(w.episodes) == {"A"}  # opened at 6
    sold_at_10 = seen[-1][0, FEATURES.index("sold_today")]
    # A late till: a sale at 10:40 arrives after hour 10 was predicted. Applied, counted late;
    # hour 10 is not predicted again, and hour 11 counts it.
    _feed(w, [_sale("late", "A", last, 10, 40, qty=7)])
    assert w.late_events == 1 and [p.hour for p in w.predictions if p.day == last][-1] == 10
    _feed(w, [_sale("c", "A", last, 12, 30)])
    assert seen[-1][0, FEATURES.index("sold_today")] == sold_at_10 + 7 + 5 + 5  # 11:10, 11:20


def test_one_alert_per_episode_cleared_when_stock_returns():
    w = _warner([])
    day = 19_800 + HISTORY_DAYS
    _feed(w, [_sale(f"h{d}", "A", 19_800 + d, 10) for d in range(HISTORY_DAYS)])
    opened = _feed(w, [_sale("a", "A", day, 8)])  # hours 6, 7 complete: one open alert
    assert [(a.episode, a.sku, a.warning) for a in opened] == [("open", "A", "intraday")]
    assert opened[0].reason_codes == ["INTRADAY_SELL_OUT_RISK"] and opened[0].horizon_hours == 4
    empty = {"event_id": "r1", "store_id": "0", "sku": "A", "type": "shelf_units", "qty": 0,
             "event_time": at(day, 9), "source": "shelf"}  # fmt: skip
    assert _feed(w, [empty, _sale("b", "A", day, 10)]) == []  # out at 9: same episode
    back = {**empty, "event_id": "r2", "qty": 3, "event_time": at(day, 11)}
    # Back at 11: hour 10 was still out, hour 11 clears the episode; its risk (0.9 here)
    # opens the next one at once.
    after = _feed(w, [back, _sale("c", "A", day, 12, 30)])
    assert [(a.episode, a.reason_codes, a.hour_start.hour) for a in after] == [
        ("cleared", ["STOCK_RETURNED"], 3),
        ("open", ["INTRADAY_SELL_OUT_RISK"], 3),
    ]  # 11:00 at +08:00 is 03:00 UTC
    assert after[1].message_id != opened[0].message_id


def test_warnings_go_out_over_mosquitto_one_per_episode(panel, bundle, tmp_path, mosquitto):
    stream = store_stream(panel, np.arange(panel.n_series), LIVE, 2)
    collector = AlertCollector(mosquitto.port, "shelfcast")
    try:
        r = replay_store(stream, bundle, key_pair()[1], mosquitto.port, tmp_path / "gw", collector)
    finally:
        collector.stop()
    assert r.all_ingested and r.alerts
    by_sku: dict[str, list[str]] = {}
    for m in r.alerts:
        msg = parse_message(m)  # the one schema
        assert msg.kind == "stockout" and msg.horizon_hours == 4
        by_sku.setdefault(m["sku"], []).append(m["episode"])
    for episodes in by_sku.values():  # open, cleared, open, ...: never two opens in a row
        assert all(a != b for a, b in itertools.pairwise(episodes))
        assert episodes[0] == "open"


def test_the_ledger_empty_where_its_stock_is_known_is_an_empty_shelf():
    """A received SKU whose sale leaves nothing on hand is out from then on; no prediction is
    made for it until a receipt puts units back."""
    from edge_runtime.store.stock import SkuState

    w = _warner([])
    day = 19_800 + HISTORY_DAYS
    _feed(w, [_sale(f"h{d}", "A", 19_800 + d, 10) for d in range(HISTORY_DAYS)])
    last, _ = parse_events([_sale("last", "A", day, 7, 50)], store_id="0")
    w.observe(last, [(last[0], SkuState("A", on_hand=0, received=10, sold=10))])
    _feed(w, [_sale("later", "A", day, 10)])  # hours 7..9 complete: A out since 7:50
    assert [p.hour for p in w.predictions if p.day == day] == [6]
    receipt = {**_sale("r", "A", day, 10, 45), "type": "receipt", "source": "wms"}
    got, _ = parse_events([receipt], store_id="0")
    w.observe(got, [(got[0], SkuState("A", on_hand=20, received=30, sold=10))])
    _feed(w, [_sale("after", "A", day, 12, 30)])  # hour 10 out (until 10:45), 11 in stock
    assert [p.hour for p in w.predictions if p.day == day] == [6, 11]
