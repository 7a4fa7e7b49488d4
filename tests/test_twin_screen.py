"""The screening replay is the engine's decisions: replaying the deployed engine's recorded
forecast tables through the twin's store gives the very orders, lost units and inventory the
engine's own replay gave (real ONNX Runtime bundle, censored days, a SKU that starts late)."""

from __future__ import annotations

import numpy as np

from benchmarks.twin_screen import TableReplay, record
from tests.test_gateway_model import demand_bundle
from twin.store import DemandPanel, StoreConfig, simulate


def test_replaying_the_engines_tables_makes_the_engines_decisions(tmp_path):
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")  # mean: the 7-day mean feature
    rng = np.random.default_rng(11)
    units = rng.poisson([[3.0], [6.0], [1.5], [2.0]], size=(4, 60)).astype(float)
    units[:, 0] = 2.0
    units[3, :12] = 0.0  # D's series starts late: no history row before its first sale
    units[1, rng.choice(np.arange(5, 60), 6, replace=False)] = 60.0  # B's wholesale days
    panel = DemandPanel.from_arrays(
        "S1", ["A", "B", "C", "D"], np.datetime64("2026-01-01") + np.arange(60), units
    )
    store = StoreConfig(
        lead_time=2, review_period=3, pack_size=1, capacity_days=30.0, min_capacity=1
    )
    windows = {"validation": (35, 60)}
    traces = record(panel, windows, store, str(bundle), every_days=1.5)
    engine = traces["validation"]
    replay = simulate(panel, TableReplay(engine["trace"], 1.5), store, 35, 60)

    assert replay.stockout_days().any() and replay.orders.sum() > 0  # censored days, orders
    np.testing.assert_array_equal(replay.orders, engine["orders"])
    m = replay.metrics()
    assert m["lost_units"] == engine["metrics"]["lost_units"] > 0
    assert m["avg_inventory_units"] == engine["metrics"]["avg_inventory_units"]
