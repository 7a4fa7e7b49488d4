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


def _wholesale_history() -> np.ndarray:
    rng = np.random.default_rng(5)
    history = rng.poisson(4.0, size=(5, 364)).astype(float)
    history[1, rng.choice(364, 7, replace=False)] = 300.0  # wholesale days
    history[2, :100] = np.nan  # a SKU that starts late
    history[3] = np.nan  # one with no history: no buffer
    history[4, :363] = np.nan  # one with a single day
    return history


def test_the_tail_quantiles_with_equal_weights_average_to_the_engines_buffer():
    from benchmarks.twin_screen import recency_buffer, tail_quantiles
    from edge_runtime.decide.service_level import buffer_exceeded_every

    history = _wholesale_history()
    for every in (20.0, 56.25, 90.0):
        engine = buffer_exceeded_every(history, every)
        np.testing.assert_allclose(tail_quantiles(history, every).mean(axis=1), engine, rtol=1e-9)
        np.testing.assert_allclose(recency_buffer(1e12)(history, every, None), engine, rtol=1e-9)


def test_the_recency_weighted_buffer_counts_a_recent_order_more_than_an_old_one():
    from benchmarks.twin_screen import recency_buffer
    from edge_runtime.decide.service_level import buffer_exceeded_every

    old = np.full(364, 2.0)
    orders = np.arange(0, 35, 5)  # seven 300-unit orders, 11-12 months ago
    old[orders] = 300.0
    recent = old[::-1].copy()  # the same orders in the last five weeks
    history = np.stack([old, recent])
    engine = buffer_exceeded_every(history, 56.25)
    assert engine[0] == engine[1] > 100.0  # the engine: the same days, the same buffer
    b = recency_buffer(91.0)(history, 56.25, None)
    # By hand: each day weighs exp(-age / 91). The recent row's lowest order is exceeded by
    # the other six's weight over the weight of all days but the smallest (column 0), more
    # than the largest smoothing rate 2 / 56.25: every quantile, so the buffer, is 300.
    w = np.exp(-np.arange(364)[::-1] / 91.0)
    assert w[363 - orders[:-1]].sum() / (w.sum() - w[0]) > 2.0 / 56.25
    np.testing.assert_allclose(b[1], 300.0)
    # The old row's seven orders weigh less than the smallest rate 0.5 / 56.25: the buffer
    # is the ordinary day.
    assert w[orders].sum() / (w.sum() - w[1]) < 0.5 / 56.25
    np.testing.assert_allclose(b[0], 2.0)


def test_the_lifecycle_buffer_shrinks_a_declining_skus_buffer():
    from benchmarks.twin_screen import lifecycle_buffer
    from edge_runtime.decide.service_level import buffer_exceeded_every

    history = np.full((4, 364), 2.0)
    history[:, ::30] = 50.0
    ratio = np.array([0.5, 4.0, 0.1, 1.0])  # declining, growing, fading, steady
    mean = np.repeat((ratio * history.mean(axis=1))[:, None], 9, axis=1)  # the level
    engine = buffer_exceeded_every(history, 56.25)
    assert (engine > 2.0).all()

    def factor(power, lo, hi):
        return lifecycle_buffer(power, lo, hi)(history, 56.25, mean) / engine

    np.testing.assert_allclose(factor(1.0, 0.25, 1.0), [0.5, 1.0, 0.25, 1.0])
    np.testing.assert_allclose(factor(0.5, 0.25, 1.0), [0.5**0.5, 1.0, 0.5, 1.0])
    np.testing.assert_allclose(factor(1.0, 0.5, 2.0), [0.5, 2.0, 0.5, 1.0])


def test_the_lifecycle_net_of_the_store_leaves_out_the_season_every_sku_shares():
    from benchmarks.twin_screen import lifecycle_buffer
    from edge_runtime.decide.service_level import buffer_exceeded_every

    history = np.full((3, 364), 2.0)
    history[:, ::30] = 50.0
    year = history.mean(axis=1)
    engine = buffer_exceeded_every(history, 56.25)
    season = np.repeat((0.6 * year)[:, None], 9, axis=1)  # every SKU at 0.6 of its year
    plain = lifecycle_buffer(1.0, 0.25, 1.0)(history, 56.25, season) / engine
    net = lifecycle_buffer(1.0, 0.25, 1.0, net_of_store=True)(history, 56.25, season) / engine
    np.testing.assert_allclose(plain, 0.6)
    np.testing.assert_allclose(net, 1.0)
    # One SKU at half the ratio of the others: only it shrinks (the store is at 0.5).
    mean = np.repeat((np.array([0.3, 0.6, 0.6]) * year)[:, None], 9, axis=1)
    store = 3.0 / 1.5  # the years' total over the levels' total
    net = lifecycle_buffer(1.0, 0.25, 1.0, net_of_store=True)(history, 56.25, mean) / engine
    np.testing.assert_allclose(net, np.minimum(np.array([0.3, 0.6, 0.6]) * store, 1.0))
    assert net[0] < 1.0 == net[1] == net[2]


def test_the_room_capped_buffer_caps_each_quantile_at_the_shelfs_room():
    from benchmarks.twin_screen import RoomCappedBuffer, room_capped, tail_quantiles
    from edge_runtime.decide.service_level import buffer_exceeded_every

    history = _wholesale_history()
    q = tail_quantiles(history, 56.25)
    np.testing.assert_allclose(  # room above every quantile: the engine's buffer
        room_capped(q, np.full(5, 1e9)), buffer_exceeded_every(history, 56.25), rtol=1e-9
    )
    capped = room_capped(q, np.full(5, 100.0))
    assert capped[1] < min(buffer_exceeded_every(history, 56.25)[1], 100.0)  # not just min()
    np.testing.assert_allclose(capped[1], np.minimum(q[1], 100.0).mean())

    units = np.full((2, 400), 3.0)
    units[1, ::40] = 200.0
    panel = DemandPanel.from_arrays(
        "S1", ["A", "B"], np.datetime64("2025-01-01") + np.arange(400), units
    )
    replay = RoomCappedBuffer({}, 56.25)
    replay.prepare(panel, 380, StoreConfig(capacity_days=20.0))  # B's shelf: 168 units
    mean = np.full((2, 9), 3.0)
    h = replay.history.matrix()
    room = replay.capacity - 9 * 3.0
    np.testing.assert_allclose(replay._buffer(h, 56.25, mean),
                               room_capped(tail_quantiles(h, 56.25), room))  # fmt: skip
    assert replay._buffer(h, 56.25, mean)[1] < buffer_exceeded_every(h, 56.25)[1]


def test_an_empty_shelfs_day_counts_as_the_years_days_above_its_sales():
    from benchmarks.twin_screen import CensoredTailHistory
    from twin.store import StoreState

    units = np.full((2, 380), 2.0)
    units[:, 100:380:60] = [[40.0], [3.0]]  # A's large days; B's are small
    panel = DemandPanel.from_arrays(
        "S1", ["A", "B"], np.datetime64("2025-01-01") + np.arange(380), units
    )
    config = StoreConfig()
    replay = CensoredTailHistory({}, 56.25)
    replay.prepare(panel, 370, config)
    pack, capacity, _ = np.ones(2), np.full(2, 99.0), None

    def close(sold, on_hand):
        sales = np.array(sold, dtype=float)[:, None]
        on_hand = np.array(on_hand, dtype=float)
        replay.observe(StoreState(370, on_hand, np.zeros(2), sales, pack, capacity, config))
        return replay.history.days[-1].copy()

    engine = replay.history.level.copy()  # the in-stock level the engine lifts an empty day to
    # A ran out after selling 10: its year's days of at least 10 are its five 40-unit days.
    # B ran out after selling 10 too: no day of its year reached 10, the engine's estimate.
    day = close([10.0, 10.0], [0.0, 0.0])
    np.testing.assert_allclose(day, [40.0, max(10.0, engine[1])])
    day = close([1.0, 1.0], [5.0, 0.0])  # A in stock: what it sold
    assert day[0] == 1.0 and day[1] > 2.0  # B: the mean of its days of at least 1
    # A ran out after selling 2: the mean of its year's days of at least 2 (all of them) is
    # above its level; their median is the 2-unit day, below it: the engine's estimate.
    for stat in (np.mean, np.median):
        replay = CensoredTailHistory({}, 56.25, stat)
        replay.prepare(panel, 370, config)
        year = replay.history.matrix()[0]
        level = replay.history.level[0]
        want = max(level, stat(year)) if stat is np.mean else level
        assert np.mean(year) > level > np.median(year) == 2.0
        np.testing.assert_allclose(close([2.0, 0.0], [0.0, 5.0])[0], want)
