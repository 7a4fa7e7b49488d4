"""What a consumer of the gateway's alerts can rely on: a stock-out is alerted from the first
event with a model bundle installed, the same events decide the same alerts however they are
grouped into messages, a decision keeps its ``message_id`` across restarts and redeliveries,
and seeded history sends nothing. Real SQLite, real ONNX Runtime bundles, real Mosquitto."""

from __future__ import annotations

import json
import random
from collections import defaultdict

import numpy as np
import pytest

from edge_runtime.decide.forecast_policy import (
    DailyForecasts,
    DecisionSettings,
    ForecastDecisionPolicy,
)
from edge_runtime.gateway import Gateway
from edge_runtime.messages import decision_id
from tests.mosquitto import Subscriber, wait
from tests.test_gateway_model import config, daily_sales, demand_bundle, ev

ALERTS = ["shelfcast/S1/alerts/#", "shelfcast/S1/conflicts"]


def stockouts(messages):
    return [m for m in messages if m["kind"] == "stockout"]


# ---- a stock-out from the first event --------------------------------------------------


@pytest.mark.mqtt
def test_a_bundle_gateway_alerts_on_the_first_event_that_empties_a_sku(tmp_path, mosquitto):
    """A fresh gateway with a model bundle (no store day closed, so no forecast yet) publishes
    the stock-out at once, as the rules policy does: the first event that empties the SKU."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/stockout"], client_id="first-alert")
    with Gateway(config(tmp_path, bundle, mosquitto)).start() as gw:
        assert gw.transport.wait_connected(10) and gw.forecasts is None
        gw.ingest(ev("r", "A", "receipt", 5, 5), "wms")
        gw.ingest(ev("s1", "A", "sale", 4, 5, 11), "pos")
        assert stockouts(gw.recent_messages()) == []  # one unit left: no forecast, no risk
        gw.ingest(ev("s2", "A", "sale", 1, 5, 12), "pos")
        got = [json.loads(p) for _, p, _ in consumer.wait_for(1)]
    consumer.close()
    assert [(m["sku"], m["cause_event_id"], m["model_version"]) for m in got] == [
        ("A", "s2", "col-7")
    ]
    assert got[0]["probability"] == 1.0 and got[0]["reason_codes"] == ["ON_HAND_ZERO"]
    assert got[0]["message_id"] == decision_id("S1", "stockout", "A", "s2")


def test_forecast_decisions_take_over_once_a_day_has_closed(tmp_path):
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    with Gateway(config(tmp_path, bundle)) as gw:
        gw.ingest([ev("r", "A", "receipt", 40, 1), *daily_sales("A", 4, range(1, 9))], "pos")
        assert gw.forecasts is not None and "A" in gw.forecasts.skus
        gw.ingest(ev("big", "A", "sale", 8, 8, 15), "pos")  # ATP 40 - 32 - 8: zero
        (alert,) = [m for m in stockouts(gw.recent_messages()) if m["cause_event_id"] == "big"]
        assert alert["reason_codes"] == ["ATP_ZERO"] and "forecast_mean_daily" in alert["evidence"]


# ---- one per message or as a backlog: the same decisions --------------------------------


def stream(seed: int = 3, skus: int = 6, days: int = 6) -> list[dict]:
    """Several days of a small store in event-time order: morning receipts, sales through
    the day, online reservations; SKUs run out, are restocked and run out again."""
    rng = random.Random(seed)
    events, n = [], 0
    for day in range(1, days + 1):
        for minute in range(0, 600, 7):
            if minute in (0, 301):  # deliveries at 8:00 and 13:01
                for k in range(skus):
                    if day == 1 or rng.random() < 0.6:
                        qty = rng.randint(4, 12)
                        events.append(
                            ev(f"r{n}", f"K{k}", "receipt", qty, day, 8 + minute // 60, k)
                        )
                        n += 1
            sku = f"K{rng.randrange(skus)}"
            kind = "reservation" if rng.random() < 0.1 else "sale"
            hour, minute = 8 + minute // 60, minute % 60
            events.append(ev(f"e{n}", sku, kind, rng.randint(1, 3), day, hour, minute,
                             source="ecom" if kind == "reservation" else "pos",
                             **({"order_id": f"o{n}"} if kind == "reservation" else {})))  # fmt: skip
            n += 1
    return events


def decided(gw: Gateway) -> dict[str, tuple]:
    """message_id -> (kind, sku, cause) of every decision the gateway stored."""
    out = {}
    for m in gw.recent_messages(limit=100_000):
        if m["kind"] in ("stockout", "replenishment", "anomaly", "conflict"):
            out[m["message_id"]] = (m["kind"], m["sku"], m["cause_event_id"])
    return out


@pytest.mark.parametrize("with_bundle", [False, True], ids=["rules", "bundle"])
def test_the_same_events_decide_the_same_alerts_one_per_message_or_as_a_backlog(
    tmp_path, with_bundle
):
    """Decisions follow each state change: a SKU emptied, restocked and emptied again inside
    one batch alerts twice, and an event after midnight is decided on the new day's forecast,
    exactly as when the events arrive one by one (tolerance: none, for events in order)."""
    events = stream()
    found = []
    for grouping in ("single", "backlog"):
        bundle = demand_bundle(tmp_path / grouping / "bundles" / "col-7") if with_bundle else None
        with Gateway(config(tmp_path / grouping, bundle)) as gw:
            if grouping == "single":
                for e in events:
                    gw.ingest(e, "pos")
            else:
                for i in range(0, len(events), 500):  # what the MQTT path groups at most
                    gw.ingest(events[i : i + 500], "pos")
            found.append(decided(gw))
    single, backlog = found
    assert len(stockouts([{"kind": k} for k, *_ in single.values()])) >= 10
    assert backlog == single  # same decisions, same causes, same message ids


# ---- stable identity across restarts ------------------------------------------------------


@pytest.mark.mqtt
def test_a_restart_and_redelivered_events_issue_no_alert_under_a_second_id(tmp_path, mosquitto):
    """The gateway runs over half the events, stops, and a new one on the same state directory
    gets every event again (the broker's redelivery) and the rest: the consumer sees each
    decision under one message_id."""
    events = stream(seed=5)
    half = len(events) // 2
    consumer = Subscriber(mosquitto, ALERTS, client_id="restart-consumer")
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    for part in (events[:half], events):
        with Gateway(config(tmp_path, bundle, mosquitto)).start() as gw:
            assert gw.transport.wait_connected(10)
            for i in range(0, len(part), 50):
                gw.ingest(part[i : i + 50], "pos")
            assert gw.flush(20)
            if part is not events:
                first = decided(gw)
    with Gateway(config(tmp_path)) as gw:
        want = decided(gw)
    assert wait(lambda: len(consumer.received) >= len(want), 10)
    consumer.close()
    ids = defaultdict(set)
    for _, payload, _ in consumer.received:
        m = json.loads(payload)
        ids[(m["kind"], m["sku"], m["cause_event_id"], tuple(m["reason_codes"]))].add(
            m["message_id"]
        )
    assert len(ids) >= 10 and all(len(v) == 1 for v in ids.values())
    assert {i for v in ids.values() for i in v} == set(want)
    # The redelivered half decided nothing new: its decisions are the first run's, ids and all.
    first_half = {e["event_id"] for e in events[:half]}
    assert {i for i, (_, _, cause) in want.items() if cause in first_half} <= set(first)


def fixed_policy(mean: float) -> ForecastDecisionPolicy:
    """The forecast policy on a fixed table: ``mean`` units a day (P90 twice it) for SKU A."""
    table = DailyForecasts(
        ["A"], np.datetime64("2026-01-01"), np.full((1, 9, 3), mean), np.full((1, 9, 3), 2 * mean)
    )
    settings = DecisionSettings(lead_time_days=2.0, review_days=0.0, min_change=0.2)
    return ForecastDecisionPolicy("S1", table, "m1", settings=settings)


@pytest.mark.mqtt
def test_a_restart_resumes_the_stockout_episodes_it_had_published(tmp_path, mosquitto):
    """After a restart the forecasts differ a little (River's correction starts afresh): A's
    risk at ATP 4 falls from 0.55 to 0.48, inside the hysteresis band, so its episode is still
    open. The next sale must not alert A again under a new id as if it were a new episode."""
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/stockout"], client_id="episodes")
    cfg = config(tmp_path, broker=mosquitto)
    with Gateway(cfg, policy=fixed_policy(2.0)).start() as gw:
        gw.ingest([ev("r", "A", "receipt", 10, 3), ev("s1", "A", "sale", 5, 3, 9)], "pos")
        gw.ingest(ev("s2", "A", "sale", 1, 3, 10), "pos")  # ATP 4: P = 0.55 >= 0.5
        assert len(stockouts(gw.recent_messages())) == 1
        assert gw.flush(10)
    with Gateway(cfg, policy=fixed_policy(1.8)).start() as gw:  # ATP 4: P = 0.48
        gw.ingest(ev("s3", "A", "sale", 1, 3, 11), "pos")  # ATP 3: P = 0.68, a 0.13 move
        assert gw.flush(10)
        gw.ingest(ev("s4", "A", "sale", 3, 3, 12), "pos")  # ATP 0: P = 1, a real update
        assert gw.flush(10)
    got = [json.loads(p) for _, p, _ in consumer.wait_for(3, timeout=2)]  # a third: re-issued
    consumer.close()
    assert [(m["cause_event_id"], m["probability"]) for m in got] == [
        ("s2", pytest.approx(0.547, abs=1e-3)),
        ("s4", 1.0),
    ]


# ---- seeded history ----------------------------------------------------------------------


def test_seeded_history_leaves_no_alert_to_send_and_live_events_alert(tmp_path):
    """Eight days of history in which A runs out daily: stored, learnt from (seven closes
    re-scored), nothing to send then or at the next start; live events decide afresh."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    history = [
        [ev(f"r{d}", "A", "receipt", 3, d, 6), ev(f"a{d}", "A", "sale", 3, d), ev(f"b{d}", "B", "sale", 1, d)]
        for d in range(1, 9)
    ]  # fmt: skip
    with Gateway(config(tmp_path, bundle)) as gw:
        assert gw.seed_history(history) == 24
        assert gw.outbox_depth() == 0 and gw.recent_messages() == []
        assert gw.counters["day_closes"] == 7 and gw.stock("A").available == 0
    with Gateway(config(tmp_path)) as gw:  # the next start has nothing stale to send
        assert gw.outbox_depth() == 0
        gw.ingest([ev("r9", "A", "receipt", 2, 9, 6), ev("s9", "A", "sale", 2, 9, 9)], "pos")
        live = gw.recent_messages()  # A at risk again; B, out all along, at the close of day 8
        assert live and all(m["event_time"].startswith("2026-01-09") for m in live)
        out = {(m["sku"], m["cause_event_id"]) for m in stockouts(live)}
        assert out == {("A", "r9"), ("B", None)}
