"""The gateway with its own model bundle: day-close re-score (one batched ONNX Runtime call on
every SKU), forecast-driven stock-out alerts and replenishment triggers, phantom and shrink
alerts, refused bundles and a hot swap under concurrent ingest. Real SQLite, real ONNX Runtime on
small bundles built here, real Mosquitto for the end-to-end test."""

from __future__ import annotations

import json
import math
import pickle
import shutil
import threading

import numpy as np
import pytest

from edge_runtime.config import load_config, with_mqtt
from edge_runtime.decide.service_level import buffer_exceeded_every
from edge_runtime.decide.stockout import stockout_risk
from edge_runtime.gateway import Gateway
from edge_runtime.store.store_failure import StoreError
from feature_store.spec import ANOMALY_FEATURES, index, names, spec_dict
from models.bundle import BundleError
from tests.mosquitto import Subscriber, wait
from tests.signed_bundles import public_key_env, signed_bundle
from tests.test_api_bundle import onnx_model
from tests.test_api_predictions import column_model


def demand_bundle(out, column: str = "mean_7"):
    """A real ONNX bundle whose demand mean is one feature column (P90 twice it)."""
    models = {
        "demand": column_model(index(column), len(names())),
        "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"]),
    }
    return signed_bundle(out, models, spec_dict(), {"model_version": out.name})


def config(tmp_path, bundle=None, broker=None, **env):
    values = {
        "SHELFCAST_STORE_ID": "S1",
        "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
        "SHELFCAST_MQTT_ENABLED": "false" if broker is None else "true",
        **public_key_env(),
        **env,
    }
    if bundle is not None:
        values["SHELFCAST_BUNDLE"] = str(bundle)
    cfg = load_config(env=values)
    if broker is not None:
        cfg = with_mqtt(cfg, host="127.0.0.1", port=broker.port, reconnect_min_s=0.1)
    return cfg


def ev(eid, sku, kind, qty, day, hour=10, minute=0, **more):
    return {"event_id": eid, "store_id": "S1", "sku": sku, "type": kind, "qty": qty,
            "event_time": f"2026-01-{day:02d}T{hour:02d}:{minute:02d}:00+01:00",
            "source": "wms" if kind == "receipt" else "pos", **more}  # fmt: skip


def daily_sales(sku, per_day, days, prefix=None):
    """One sale event of ``per_day`` units on each of ``days``."""
    prefix = prefix or f"s-{sku}"
    return [ev(f"{prefix}-{d}", sku, "sale", per_day, d) for d in days]


def kinds(messages, kind):
    return [m for m in messages if m["kind"] == kind]


# ---- day close ---------------------------------------------------------------------------


@pytest.mark.mqtt
def test_day_close_rescore_raises_a_stockout_alert_on_a_consumer(tmp_path, mosquitto):
    """A slow seller turns fast on day 7: the forecast made at the close of day 6 sees no
    risk; the re-score at the close of day 7 (crossed by another SKU's event) does, and a
    plain MQTT consumer receives the alert with the bundle's version and its numbers."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/stockout"], client_id="stockout-c")
    cfg = config(tmp_path, bundle, mosquitto, SHELFCAST_MODEL_REVIEW_DAYS="0")
    with Gateway(cfg).start() as gw:
        assert gw.transport.wait_connected(10) and gw.model_version == "col-7"
        history = [ev("r-A", "A", "receipt", 21, 1), ev("r-B", "B", "receipt", 500, 1)]
        history += daily_sales("A", 1, range(1, 7)) + daily_sales("B", 1, range(1, 8))
        gw.ingest(history, "seed")  # closes days 1..6 (B sold on the 7th, the open day)
        gw.ingest([ev("surge", "A", "sale", 12, 7)], "pos")  # ATP 3
        # The close of day 6 forecast 1 a day: P(2 days' demand >= 3) = 0.32, below 0.5.
        assert kinds(gw.recent_messages(), "stockout") == []
        gw.ingest([ev("b-8", "B", "sale", 1, 8)], "pos")  # midnight of day 7 passes
        assert gw.counters["day_closes"] == 6 + 1
        got = [json.loads(p) for _, p, _ in consumer.wait_for(1)]
    consumer.close()
    assert [(m["sku"], m["model_version"], m["cause_event_id"]) for m in got] == [
        ("A", "col-7", None)
    ]
    # Closed days 1..7 of A: 1 a day for six days, then 12 on the 7th: the model's mean is
    # mean_7 = 18 / 7 a day (P90 twice it), River-corrected by what it learnt from the 7th.
    mean, p90 = gw.forecasts.lookup("A", "2026-01-08T10:00:00+01:00", 2)
    assert mean == pytest.approx(18 / 7, rel=0.01) and p90 >= mean
    want = stockout_risk(np.array([mean]), np.array([p90]), np.array([3.0]), 2.0)
    alert = got[0]
    assert alert["probability"] == pytest.approx(float(want.probability[0]))
    assert alert["probability"] > 0.5
    assert alert["reason_codes"] == ["FORECAST_RISK"] and alert["atp"] == 3
    assert alert["evidence"]["forecast_mean_daily"] == pytest.approx(mean, abs=1e-3)
    assert alert["event_time"].startswith("2026-01-08T")  # decided when the day closed


def test_one_batched_onnx_call_scores_every_sku_at_the_close(tmp_path):
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    with Gateway(config(tmp_path, bundle, SHELFCAST_MODEL_FORECAST_DAYS="5")) as gw:
        calls = []
        real = gw.model.scorer.demand
        gw.model.scorer.demand = lambda X: calls.append(X.shape) or real(X)
        skus = [f"K{i}" for i in range(40)]
        gw.ingest([e for k in skus for e in daily_sales(k, 2, range(1, 4))], "seed")
        # One call per close (days 1 and 2 close): 40 SKUs x the 3 horizons decisions read
        # (lead time 2 + review period 1 day); the other 2 once, when the table is asked for.
        assert calls == [(40 * 3, len(names()))] * 2
        table = gw.forecasts
        assert calls[2:] == [(40 * 2, len(names()))] and table.mean.shape[2] == 5
        assert gw.forecasts is table and len(calls) == 3
        assert sorted(table.skus) == sorted(skus) and str(table.last_close) == "2026-01-02"
        assert table.lookup("K3", "2026-01-03T12:00:00+01:00", 5) == (2.0, 4.0)


def test_restart_rescores_the_last_closed_day_from_the_ledger(tmp_path):
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    events = [ev("r", "A", "receipt", 50, 1), *daily_sales("A", 3, range(1, 10))]
    events += [ev("ret", "A", "return", 2, 4), ev("v", "A", "void", 1, 9)]
    with Gateway(config(tmp_path, bundle)) as gw:
        gw.ingest(events, "seed")
        # The model's own forecast (River's correction, learnt at each close, starts afresh).
        before = gw.model.central.lookup("A", "2026-01-09T12:00:00+01:00", 3)
        series = list(gw.sales.series["A"].units)
    # Restart without the configured path: the installed copy in the state dir is used.
    with Gateway(config(tmp_path)) as gw:
        assert gw.model_version == "col-7" and gw.bundle.path == gw.cfg.bundle_dir.resolve()
        assert list(gw.sales.series["A"].units) == series and gw.sales.open_units == {"A": 2.0}
        assert gw.model.central.lookup("A", "2026-01-09T12:00:00+01:00", 3) == before
        assert kinds(gw.recent_messages(), "stockout") == []  # start-up decides nothing new


def test_late_and_rolled_back_events_never_count_twice(tmp_path):
    with Gateway(config(tmp_path)) as gw:
        gw.ingest(daily_sales("A", 2, range(1, 4)), "seed")
        gw.ingest([ev("late", "A", "sale", 5, 1)], "pos")  # day 1 is closed: counted today
        gw.ingest(daily_sales("A", 2, range(1, 4)), "seed")  # duplicates: nothing
        assert list(gw.sales.series["A"].units) == [2.0, 2.0] and gw.sales.open_units["A"] == 7

        def fail(*_):
            raise OSError("disk full")  # the transaction rolls back after the day closed

        gw.engine._watch = fail
        with pytest.raises(StoreError) as refused:  # the store failed, not the event
            gw.ingest([ev("d4", "A", "sale", 1, 4)], "pos")
        assert isinstance(refused.value.__cause__, OSError)
        del gw.engine._watch
        # Rolled back after day 3 closed in place: the series are rebuilt from what committed,
        # as a restart sees it (the late sale back on its own day): 11 units, none of d4's.
        assert list(gw.sales.series["A"].units) == [7.0, 2.0] and gw.sales.open_units["A"] == 2
        gw.ingest([ev("d4", "A", "sale", 1, 4)], "pos")
        assert list(gw.sales.series["A"].units) == [7.0, 2.0, 2.0]
        assert gw.sales.open_units["A"] == 1


# ---- replenishment -----------------------------------------------------------------------


@pytest.mark.parametrize("every", ["91", "0"])
def test_replenishment_safety_stock_is_the_marginal_buffer_of_the_skus_year(tmp_path, every):
    """A SKU selling 4 a day with one 40-unit day: its buffer is the single-day demand of its
    history exceeded once every 91 days (the 40-unit day counts), not z * sigma."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    cfg = config(tmp_path, bundle, SHELFCAST_MODEL_BUFFER_EVERY_DAYS=every)
    days = [40.0 if d == 5 else 4.0 for d in range(1, 9)]
    with Gateway(cfg) as gw:
        seed = [ev("r", "A", "receipt", 200, 1)]
        seed += [ev(f"s{d}", "A", "sale", u, d) for d, u in enumerate(days, 1)]
        gw.ingest(seed, "seed")
        gw.ingest([ev("big", "A", "sale", 150, 9, 12)], "pos")  # 200 - 72 - 150 < 0: order
        [trigger] = kinds(gw.recent_messages(), "replenishment")
    buffer = buffer_exceeded_every(np.array([days]), 91.0)[0]
    assert buffer > 30  # the big day is inside the once-in-91-days level
    if every == "0":
        assert trigger["evidence"]["safety_rule"] == "z_sigma"
        assert trigger["evidence"]["safety_stock"] != pytest.approx(buffer, rel=1e-3)
    else:
        assert trigger["evidence"]["safety_rule"] == "marginal_buffer"
        assert trigger["evidence"]["safety_stock"] == pytest.approx(buffer, rel=1e-6)


def test_replenishment_triggers_once_while_the_order_is_open_and_a_receipt_closes_it(tmp_path):
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    cfg = config(tmp_path, bundle, SHELFCAST_MODEL_LEAD_TIME_DAYS="2")
    with Gateway(cfg) as gw:
        gw.ingest([ev("r", "A", "receipt", 100, 1), *daily_sales("A", 4, range(1, 9))], "seed")
        assert kinds(gw.recent_messages(), "replenishment") == []  # 68 on hand: plenty
        gw.ingest([ev("big", "A", "sale", 60, 8, 12)], "pos")  # 8 left, ~4 a day
        first = kinds(gw.recent_messages(), "replenishment")
        assert len(first) == 1 and first[0]["cause_event_id"] == "big"
        assert first[0]["model_version"] == "col-7" and first[0]["atp"] == 8
        # order-up-to over lead 2 + review 1 days at 4 a day, safety stock from P90 = 8
        assert first[0]["order_up_to"] > 12  # 3 days at 4 a day plus safety stock
        assert first[0]["recommended_qty"] == math.ceil(first[0]["order_up_to"] - 8 - 1e-9)
        assert "A" in gw.policy.replenisher.open_orders
        gw.ingest([ev("s2", "A", "sale", 3, 8, 13), ev("s3", "A", "sale", 1, 8, 14)], "pos")
        assert len(kinds(gw.recent_messages(), "replenishment")) == 1  # the order is open
        # A (partial) delivery closes the order; still below the level, so a new one goes out.
        gw.ingest([ev("in", "A", "receipt", 2, 8, 15)], "wms")
        again = kinds(gw.recent_messages(), "replenishment")
        assert len(again) == 2 and again[0]["cause_event_id"] == "in" and again[0]["atp"] == 6
        gw.ingest([ev("s4", "A", "sale", 1, 8, 16)], "pos")
        assert len(kinds(gw.recent_messages(), "replenishment")) == 2  # open again
    with Gateway(cfg) as gw:  # a restart remembers the open order (published after the receipt)
        assert gw.policy.replenisher.open_orders["A"].quantity == again[0]["recommended_qty"]
        gw.ingest([ev("s5", "A", "sale", 1, 8, 17)], "pos")
        assert len(kinds(gw.recent_messages(), "replenishment")) == 2
        gw.ingest([ev("in2", "A", "receipt", 30, 8, 18), ev("s6", "A", "sale", 25, 8, 19)], "wms")
        assert kinds(gw.recent_messages(), "replenishment")[0]["cause_event_id"] == "s6"


# ---- phantom and shrink ------------------------------------------------------------------


def test_phantom_inventory_and_count_shrink_are_published_with_evidence(tmp_path):
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    with Gateway(config(tmp_path, bundle)) as gw:
        seed = [ev("r-P", "P", "receipt", 200, 1), ev("r-C", "C", "receipt", 40, 1)]
        # P sells ten single units every day of the first week, then nothing at all.
        seed += [ev(f"p-{d}-{h}", "P", "sale", 1, d, 9 + h) for d in range(1, 8) for h in range(10)]
        seed += daily_sales("C", 1, range(1, 8))
        gw.ingest(seed, "seed")
        assert kinds(gw.recent_messages(), "anomaly") == []
        # Days 7..10 close; P, selling ~6-10 a day by the forecast, stays silent 3.7 days.
        gw.ingest(daily_sales("C", 1, [8, 9, 10, 11]), "pos")
        phantom = [m for m in kinds(gw.recent_messages(), "anomaly") if m["sku"] == "P"]
        assert len(phantom) == 1 and phantom[0]["anomaly_type"] == "phantom"
        assert phantom[0]["reason_codes"] == ["NO_SALES_IMPLAUSIBLE_FOR_FORECAST"]
        assert phantom[0]["evidence"]["on_hand"] == 130 and phantom[0]["model_version"] == "col-7"
        assert phantom[0]["evidence"]["p_zero_sales"] < gw.cfg.model.phantom_alpha

        gw.ingest([ev("count-C", "C", "cycle_count", 12, 11, 20, source="count")], "count")
        shrink = [m for m in kinds(gw.recent_messages(), "anomaly") if m["sku"] == "C"]
        assert len(shrink) == 1 and shrink[0]["anomaly_type"] == "shrink"
        assert shrink[0]["reason_codes"] == ["SHRINK_BEYOND_HISTORY"]
        assert shrink[0]["cause_event_id"] == "count-C" and shrink[0]["units"] == 40 - 11 - 12
        assert shrink[0]["evidence"]["expected"] == 29 and shrink[0]["evidence"]["counted"] == 12
        # Both were written in the ledger's transaction: they are in the outbox beside it.
        assert gw.outbox_depth() >= 2


# ---- bundles -----------------------------------------------------------------------------


def test_a_tampered_or_mismatched_bundle_is_refused_with_the_reason(tmp_path):
    good = demand_bundle(tmp_path / "bundles" / "good")
    tampered = tmp_path / "bundles" / "tampered"
    shutil.copytree(good, tampered)
    data = bytearray((tampered / "demand.onnx").read_bytes())
    data[-1] ^= 1
    (tampered / "demand.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256"):
        Gateway(config(tmp_path / "a", tampered))

    spec = spec_dict()
    spec["features"] = list(reversed(spec["features"]))
    models = {"demand": column_model(0, len(names()))}
    other = signed_bundle(tmp_path / "bundles" / "other-spec", models, spec, {"model_version": "x"})
    with Gateway(config(tmp_path / "b", good)) as gw:
        for bad, reason in ((tampered, "SHA-256"), (other, "feature spec does not match")):
            with pytest.raises(BundleError, match=reason):
                gw.swap_bundle(bad)
            assert gw.model_version == "good" and gw.bundle.model_version == "good"


def test_hot_swap_under_concurrent_ingest_loses_and_repeats_nothing(tmp_path):
    """A writer thread ingests 600 single-event payloads over 6 days while the bundle is
    swapped: every event is stored once and counted once in the sales series, and messages
    after the swap carry the new bundle's version."""
    old = demand_bundle(tmp_path / "bundles" / "v1")
    new = demand_bundle(tmp_path / "bundles" / "v2", column="mean_28")
    with Gateway(config(tmp_path, old)) as gw:
        gw.ingest([ev(f"r{k}", f"K{k}", "receipt", 1000, 1) for k in range(10)], "seed")
        events = [
            ev(f"w{i}", f"K{i % 10}", "sale", 1, 1 + i // 100, 8 + (i % 100) // 10, i % 10)
            for i in range(600)
        ]
        started, swapped = threading.Event(), []

        def writer():
            for i, e in enumerate(events):
                if i == 150:
                    started.set()
                gw.ingest(e, "pos")

        thread = threading.Thread(target=writer)
        thread.start()
        assert started.wait(30)
        swapped.append(gw.swap_bundle(new))
        thread.join(60)
        assert not thread.is_alive()
        assert gw.counters["ingested"] == 610 and gw.counters["duplicates"] == 0
        assert gw.ledger.event_count() == 610
        sales = gw.sales
        counted = sum(sum(s.units) for s in sales.series.values()) + sum(sales.open_units.values())
        assert counted == 600
        assert gw.model_version == "v2" and swapped[0].model_version == "v2"
        assert gw.bundle.path == gw.cfg.bundle_dir.resolve()
        gw.ingest([ev("out", "K0", "sale", 940, 6, 23)], "pos")  # sells out: ATP zero
        last = gw.recent_messages(sku="K0", limit=1)[0]
        assert last["model_version"] == "v2" and last["kind"] in ("stockout", "replenishment")
        versions = [m["model_version"] for m in reversed(gw.recent_messages(limit=10_000))]
        assert "v2" in versions and "v1" not in versions[versions.index("v2") :]


@pytest.mark.mqtt
def test_swap_updates_the_retained_gateway_state(tmp_path, mosquitto):
    """After a swap, a consumer that connects later learns the new model version from the
    retained state message, without the gateway reconnecting."""
    old = demand_bundle(tmp_path / "bundles" / "v1")
    new = demand_bundle(tmp_path / "bundles" / "v2", column="mean_28")
    with Gateway(config(tmp_path, old, mosquitto)).start() as gw:
        assert gw.transport.wait_connected(10)
        gw.swap_bundle(new)
        late = Subscriber(mosquitto, ["shelfcast/S1/state"], client_id="late", clean_session=True)
        try:  # the retained state, or the new one if it reaches the broker after we subscribe
            assert wait(lambda: any(b"v2" in p for _, p, _ in late.received)), late.received
            state = json.loads(late.received[-1][1])
        finally:
            late.close()
        assert gw.transport.connects == 1
    assert state["status"] == "online" and state["model_version"] == gw.model_version


def test_without_a_bundle_the_gateway_runs_on_the_rules(tmp_path):
    with Gateway(config(tmp_path)) as gw:
        assert gw.model is None and gw.forecasts is None and gw.model_version == "rules-1"
        gw.ingest([ev("r", "A", "receipt", 1, 1)], "api")
        assert [m["kind"] for m in gw.recent_messages()] == ["replenishment"]


def test_a_restart_takes_the_last_close_scoring_from_the_snapshot(tmp_path, monkeypatch):
    """The snapshot keeps the last close's forecasts and anomaly scores: a restart scores
    nothing, and decides the next events and closes exactly as one that re-scored."""
    import dataclasses

    from edge_runtime.decide.day_close import DayCloseModel
    from edge_runtime.forecast.derived_snapshot import dump_derived, write_derived

    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    seed = [ev("r", "A", "receipt", 40, 1), ev("rb", "B", "receipt", 9, 1)]
    seed += daily_sales("A", 3, range(1, 10)) + daily_sales("B", 1, range(1, 10))
    with Gateway(config(tmp_path / "kept", bundle)) as gw:
        gw.ingest(seed, "seed")
        want, want_anomaly = gw.forecasts, gw.shelf_watch.anomaly
    assert want is not None and want_anomaly is not None
    shutil.copytree(tmp_path / "kept", tmp_path / "rescored")
    path = tmp_path / "rescored" / "state" / "derived.pickle"
    _, snap = pickle.loads(path.read_bytes())
    assert snap.scored is not None
    write_derived(path, dump_derived(dataclasses.replace(snap, scored=None)))  # one without it

    rescores = []
    real = DayCloseModel.rescore
    monkeypatch.setattr(DayCloseModel, "rescore", lambda m, s: rescores.append(1) or real(m, s))
    kept = Gateway(config(tmp_path / "kept", bundle))
    assert rescores == []  # nothing scored at start
    assert kept.forecasts.skus == want.skus and np.array_equal(kept.forecasts.mean, want.mean)
    assert np.array_equal(kept.forecasts.p90, want.p90)
    assert np.array_equal(kept.shelf_watch.anomaly.scores, want_anomaly.scores)
    rescored = Gateway(config(tmp_path / "rescored", bundle))
    assert rescores == [1]  # the snapshot without it: scored at start, as before
    assert np.array_equal(rescored.forecasts.mean, want.mean)
    later = daily_sales("A", 9, range(10, 14), "late-A") + daily_sales("B", 4, range(10, 14))
    with kept, rescored:
        for gw in (kept, rescored):
            gw.ingest(later, "pos")  # three closes: learnt from, re-scored, decided
        assert np.array_equal(kept.forecasts.mean, rescored.forecasts.mean)
        decided = [
            [(m["kind"], m["sku"], m["message_id"], m.get("probability"))
             for m in gw.recent_messages(limit=1000) if m["kind"] != "state"]
            for gw in (kept, rescored)
        ]  # fmt: skip
        assert decided[0] == decided[1] and decided[0]


def test_a_swaps_decisions_are_handed_to_the_hub_link(tmp_path):
    """The new model's decisions go to the hub at once, as a commit's rows do: the link is
    woken with them, not left to find them at its next look for a missed wake."""
    old = demand_bundle(tmp_path / "bundles" / "v1")
    new = demand_bundle(tmp_path / "bundles" / "v2", column="mean_28")
    with Gateway(config(tmp_path, old)) as gw:
        # P sold 10 a day for three weeks, then nothing for a week: the new model (28-day
        # mean) expects sales the old one (7-day) does not, and re-decides.
        gw.ingest([ev("r-P", "P", "receipt", 220, 1)], "seed")
        gw.ingest(daily_sales("P", 10, range(1, 22)) + daily_sales("Q", 1, range(22, 30)), "pos")
        woken = []

        class Link:
            def wake(self, rows=None):
                woken.extend(rows or [])

            def close(self):
                pass

        gw.hub_link = Link()
        seen = {m["message_id"] for m in gw.recent_messages(limit=10_000)}
        gw.swap_bundle(new)
        decided = [m for m in gw.recent_messages(limit=10_000) if m["message_id"] not in seen]
    assert decided
    assert sorted(r.message_id for r in woken) == sorted(m["message_id"] for m in decided)
