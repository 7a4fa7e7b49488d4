"""The twin's figures are the gateway's: the same days, replayed into a real gateway (real
SQLite, real ONNX Runtime) as the events a store would send, leave the gateway with the series,
censored days and forecasts the twin decided with."""

from __future__ import annotations

import numpy as np

from edge_runtime.gateway import Gateway
from tests.test_gateway_model import config, demand_bundle
from twin.gateway_engine import GatewayPolicy
from twin.store import DemandPanel, StoreConfig, simulate


def _event(eid: str, sku: str, kind: str, qty: float, day, time: str) -> dict:
    return {"event_id": eid, "store_id": "S1", "sku": sku, "type": kind, "qty": float(qty),
            "event_time": f"{day}T{time}+00:00", "source": "wms" if kind != "sale" else "pos"}  # fmt: skip


def _store_events(panel: DemandPanel, run, lead: int) -> list[list[dict]]:
    """Each day's events as the store's systems would send them: a count on the first day
    (stock nobody runs out of), the twin's starting stock counted on its first day, the twin's
    receipts at opening and its sales (real demand before the replay) at noon."""
    days = []
    for t in range(panel.n_days):
        day, out = panel.dates[t], []
        replay = t - run.start
        for i, sku in enumerate(panel.skus):
            if t == 0:
                out.append(_event(f"c0-{sku}", sku, "cycle_count", 10_000, day, "00:00:00"))
            if replay == 0:
                stock = run.extra["start_stock"][i]
                out.append(_event(f"c-{sku}", sku, "cycle_count", stock, day, "00:00:00"))
            if replay >= lead and run.orders[i, replay - lead] > 0:
                qty = run.orders[i, replay - lead]
                out.append(_event(f"r{t}-{sku}", sku, "receipt", qty, day, "00:01:00"))
            sold = run.sales[i, replay] if replay >= 0 else panel.units[i, t]
            if sold > 0:
                out.append(_event(f"s{t}-{sku}", sku, "sale", sold, day, "12:00:00"))
        days.append(out)
    after = panel.dates[-1] + 1  # an event of the next day closes the last one
    days.append([_event("close", str(panel.skus[0]), "receipt", 1, after, "00:00:00")])
    return days


def test_the_gateway_replaying_the_twins_days_learns_and_scores_what_the_twin_did(tmp_path):
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")  # mean: the 7-day mean feature
    rng = np.random.default_rng(7)
    units = rng.poisson([[3.0], [6.0], [1.5]], size=(3, 45)).astype(float)
    units[:, 0] = 2.0  # every series starts on day one, in the twin and in the gateway
    panel = DemandPanel.from_arrays(
        "S1", ["A", "B", "C"], np.datetime64("2026-01-01") + np.arange(45), units
    )
    store = StoreConfig(lead_time=2, review_period=3, capacity_days=3.0, min_capacity=1)
    policy = GatewayPolicy(str(bundle), buffer_every_days=10.0)
    run = simulate(panel, policy, store, start=30)
    assert run.stockout_days().any() and run.orders.sum() > 0  # shelves ran empty, orders came

    env = {"SHELFCAST_MODEL_FORECAST_DAYS": "5", "SHELFCAST_MODEL_BUFFER_EVERY_DAYS": "10"}
    with Gateway(config(tmp_path, bundle, **env)) as gw:
        for day in _store_events(panel, run, store.lead_time):
            gw.ingest(day, "pos")
        for sku in panel.skus:  # the same days, censored days at the same estimated demand
            assert list(gw.sales.series[sku].units) == list(policy.sales.series[sku].units)
        lifted = sum(
            np.sum(np.array(policy.sales.series[s].units)[-15:] > run.sales[i])
            for i, s in enumerate(panel.skus)
        )
        assert lifted > 0
        twin, gate = policy.model.central, gw.model.whole_central()
        assert str(twin.first_close) == str(gate.first_close) == str(panel.dates[-1])
        rows = gate.rows_of(twin.skus)
        np.testing.assert_allclose(gate.mean[rows], twin.mean)
        np.testing.assert_allclose(gate.p90[rows], twin.p90)
