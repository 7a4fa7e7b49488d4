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


def test_the_engines_band_screened_as_a_band_is_the_engines_buffer():
    from benchmarks.twin_screen import banded_buffer
    from edge_runtime.decide.service_level import SMOOTHING_RATES, buffer_exceeded_every

    rng = np.random.default_rng(3)
    history = rng.poisson(4.0, size=(5, 364)).astype(float)
    history[1, rng.choice(364, 7, replace=False)] = 300.0  # wholesale days
    history[2, :100] = np.nan  # a SKU that starts late
    history[3] = np.nan  # one with no history: no buffer
    for every in (20.0, 56.25, 90.0):
        np.testing.assert_allclose(
            banded_buffer(SMOOTHING_RATES)(history, every, None),
            buffer_exceeded_every(history, every),
            rtol=1e-12,
        )


def test_reused_traces_are_read_back_not_recorded_again(tmp_path, monkeypatch):
    import argparse

    import benchmarks.twin_screen as screen

    monkeypatch.setattr(screen, "ROOT", tmp_path)
    panel = DemandPanel.from_arrays(
        "S1", ["A"], np.datetime64("2026-01-01") + np.arange(30), np.ones((1, 30))
    )
    made = {"trace": {20: (np.ones((1, 9)), np.ones((1, 9)))}, "metrics": {}, "orders": None}
    calls = []
    monkeypatch.setattr(screen, "record", lambda *a: calls.append(a) or {"w": made})
    args = argparse.Namespace(every_days=56.25, reuse_traces=True)
    first = screen.recorded(panel, "w", (20, 30), StoreConfig(), tmp_path / "b", args)
    again = screen.recorded(panel, "w", (20, 30), StoreConfig(), tmp_path / "b", args)
    assert len(calls) == 1  # the second read the pickle
    np.testing.assert_array_equal(again["trace"][20][0], first["trace"][20][0])
    args.reuse_traces = False
    screen.recorded(panel, "w", (20, 30), StoreConfig(), tmp_path / "b", args)
    assert len(calls) == 2  # without the flag: recorded afresh


def test_a_refreshed_engines_traces_are_kept_apart_from_the_plain_ones(tmp_path, monkeypatch):
    import argparse

    import benchmarks.twin_screen as screen
    from twin.model_refresh import ModelRefresh

    monkeypatch.setattr(screen, "ROOT", tmp_path)
    panel = DemandPanel.from_arrays(
        "S1", ["A"], np.datetime64("2026-01-01") + np.arange(30), np.ones((1, 30))
    )
    made = {"trace": {}, "metrics": {}, "orders": None}
    calls = []
    monkeypatch.setattr(screen, "record", lambda *a: calls.append(a[-1]) or {"w": made})
    args = argparse.Namespace(every_days=56.25, reuse_traces=True)
    for refresh in (None, ModelRefresh(None, 28), ModelRefresh(None, 28, keep_correction=False)):
        screen.recorded(panel, "w", (20, 30), StoreConfig(), tmp_path / "b", args, refresh)
    assert len(calls) == 3 and calls[0] is None  # none of them read another's tables
