"""The digital twin: store mechanics, policies, metrics and stock-out scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edge_runtime.decide.service_level import buffer_exceeded_every
from training.history import HistoryError
from twin.policies import (
    MarginalOrderUpToPolicy,
    MinMaxPolicy,
    MovingAverageForecaster,
    OrderUpToPolicy,
    StatsForecastForecaster,
)
from twin.store import (
    DemandPanel,
    StoreConfig,
    TwinDataError,
    load_canonical,
    prediction_quality,
    roc_auc,
    simulate,
    stockout_labels,
)


def _panel(units, price=None) -> DemandPanel:
    units = np.atleast_2d(np.asarray(units, dtype=float))
    skus = [f"s{i}" for i in range(units.shape[0])]
    return DemandPanel.from_arrays(
        "st", skus, np.datetime64("2024-01-01") + np.arange(units.shape[1]), units, price
    )


class Fixed:
    """Orders a fixed quantity at every review (to test the store's mechanics, not a policy)."""

    name = "fixed"

    def __init__(self, qty: float):
        self.qty = qty

    def prepare(self, panel, start, config):
        pass

    def order(self, state):
        return np.full(state.on_hand.shape, self.qty)


def test_books_balance_and_lost_sales_when_shelf_empty():
    rng = np.random.default_rng(1)
    panel = _panel(rng.poisson(4, (5, 120)))
    cfg = StoreConfig(lead_time=3, review_period=7, pack_size=1)
    run = simulate(panel, MinMaxPolicy(safety_days=0.0), cfg, start=60)
    np.testing.assert_allclose(run.sales + run.lost, run.demand)
    assert (run.on_hand >= 0).all() and (run.lost >= 0).all()
    # end stock = start stock + everything received - everything sold
    from twin.store import sku_parameters

    _, _, start_stock = sku_parameters(panel, 60, cfg)
    received = run.orders[:, : run.orders.shape[1] - cfg.lead_time].sum(axis=1)
    np.testing.assert_allclose(run.on_hand[:, -1], start_stock + received - run.sales.sum(axis=1))
    # lost sales only happen on days the shelf closed empty
    assert (run.stockout_days()[run.lost > 0]).all()


def test_no_orders_means_every_unit_after_the_start_stock_is_lost():
    panel = _panel([[2.0] * 40])
    run = simulate(panel, Fixed(0), StoreConfig(pack_size=1, start_cover_days=0), start=20)
    m = run.metrics()
    assert m["fill_rate"] == 0.0 and m["lost_units"] == 40.0 and m["stockout_sku_days"] == 20


def test_orders_arrive_after_lead_time_in_whole_packs_within_capacity():
    panel = _panel([[0.0] * 60])  # no demand: stock only grows by receipts
    cfg = StoreConfig(
        lead_time=4,
        review_period=5,
        pack_size=6,
        capacity_days=1,
        min_capacity=30,
        start_cover_days=0,
    )
    run = simulate(panel, Fixed(7), cfg, start=30)
    assert set(np.unique(run.orders)) <= {0.0, 12.0, 6.0}  # 7 rounds up to 12, then capped
    assert run.orders[0, 0] == 12.0
    assert run.on_hand[0, 3] == 0.0 and run.on_hand[0, 4] == 12.0  # ordered day 0, arrives day 4
    assert run.on_hand.max() <= 30.0


def test_minmax_orders_only_at_or_below_min():
    hist = np.full((1, 100), 10.0)
    panel = _panel(hist)
    cfg = StoreConfig(lead_time=2, review_period=7, pack_size=1, start_cover_days=30)
    run = simulate(panel, MinMaxPolicy(safety_days=1.0), cfg, start=91)
    # min = 10 * (2 + 7 + 1) = 100; starts with 300 on hand, so the first review orders nothing
    assert run.orders[0, 0] == 0.0
    assert run.metrics()["fill_rate"] == 1.0


def test_order_up_to_uses_the_edge_rule_and_packs():
    rng = np.random.default_rng(2)
    panel = _panel(rng.poisson(5, (3, 150)))
    cfg = StoreConfig(pack_size=4, lead_time=2, review_period=7)
    run = simulate(panel, OrderUpToPolicy(MovingAverageForecaster(), z=2.0), cfg, start=100)
    assert (run.orders % 4 == 0).all() and run.orders.sum() > 0
    assert run.metrics()["fill_rate"] > 0.9


def test_more_safety_stock_means_fewer_lost_sales_and_more_inventory():
    rng = np.random.default_rng(3)
    panel = _panel(rng.negative_binomial(2, 0.3, (20, 200)))
    cfg = StoreConfig()
    lo = simulate(
        panel, OrderUpToPolicy(MovingAverageForecaster(), z=0.0), cfg, start=120
    ).metrics()
    hi = simulate(
        panel, OrderUpToPolicy(MovingAverageForecaster(), z=2.5), cfg, start=120
    ).metrics()
    assert hi["lost_units"] < lo["lost_units"]
    assert hi["avg_inventory_units"] > lo["avg_inventory_units"]


def test_marginal_policy_orders_up_to_forecast_plus_the_sku_buffer():
    """Its first order is the edge rule's: mean over lead time + review, plus the single-day
    demand exceeded once every N days in the SKU's history, in whole packs, within capacity."""
    rng = np.random.default_rng(4)
    units = rng.poisson(4.0, (2, 200)).astype(float)
    units[1, rng.choice(150, 8, replace=False)] += 80.0  # wholesale days in the history
    units[1, [165, 185]] += 80.0  # and in the replay
    panel = _panel(units)
    cfg = StoreConfig(pack_size=4, lead_time=2, review_period=7, capacity_days=60)
    policy = MarginalOrderUpToPolicy(MovingAverageForecaster(), every_days=60.0)
    run = simulate(panel, policy, cfg, start=150, horizon=2)
    seen = np.hstack([units[:, :150], run.sales[:, :1]])  # history + the first replay day's sales
    buffer = buffer_exceeded_every(seen, 60.0)
    assert buffer[1] > 80.0 > 3 * buffer[0]  # the wholesale SKU is worth covering, once in 60 days
    target = seen[:, -28:].mean(axis=1) * 9 + buffer
    # nothing is on order before the first review: the position is what is on the shelf
    expected = np.ceil(np.maximum(target - run.on_hand[:, 0], 0.0) / 4) * 4
    np.testing.assert_allclose(run.orders[:, 0], expected)
    assert (run.orders % 4 == 0).all() and run.stockout_prob is not None
    leaner = simulate(
        panel, MarginalOrderUpToPolicy(MovingAverageForecaster(), every_days=5.0), cfg, start=150
    ).metrics()
    assert leaner["avg_inventory_units"] < run.metrics()["avg_inventory_units"]
    assert leaner["lost_units"] > run.metrics()["lost_units"]


def test_metrics_include_value_where_prices_exist():
    panel = _panel([[3.0] * 50, [1.0] * 50], price=[2.0, np.nan])
    m = simulate(panel, Fixed(0), StoreConfig(pack_size=1, start_cover_days=0), start=25).metrics()
    assert m["lost_value"] == pytest.approx(2.0 * 3.0 * 25)


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(4)
    y = rng.random(200) < 0.3
    s = np.round(rng.random(200) + y * 0.3, 1)  # ties on purpose
    pos, neg = s[y], s[~y]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert roc_auc(y, s) == pytest.approx(pairwise)


def test_stockout_labels_look_ahead_and_skip_days_already_out():
    panel = _panel([[1.0] * 20])
    run = simulate(panel, Fixed(0), StoreConfig(pack_size=1, start_cover_days=3), start=10)
    # stock 3 (cover 3 days of mean 1) -> closes 2, 1, 0, 0, ...
    labels, valid = stockout_labels(run, horizon=2)
    assert labels[0, :3].tolist() == [True, True, True]
    assert valid[0, :3].tolist() == [True, True, False]


def test_prediction_quality_scores_the_policy_forecast():
    rng = np.random.default_rng(5)
    panel = _panel(rng.poisson(3, (30, 160)))
    run = simulate(
        panel,
        OrderUpToPolicy(MovingAverageForecaster(), z=0.5),
        StoreConfig(),
        start=100,
        horizon=3,
    )
    q = prediction_quality(run, threshold=0.5)
    assert 0.5 < q["auc"] <= 1.0 and 0.0 <= q["brier"] < 0.25
    assert q["scored_sku_days"] > 0


def test_bad_input_says_what_is_wrong(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"store": ["a"], "sku": ["b"], "date": ["2024-01-01"], "units": [1]}).to_csv(path)
    with pytest.raises(HistoryError, match="store_id"):
        load_canonical(path)
    frame = pd.DataFrame({"store_id": ["a"], "sku": ["b"], "date": ["2024-01-01"], "units": [1]})
    with pytest.raises(TwinDataError, match="'zz' not in the data"):
        DemandPanel.from_frame(frame, store_id="zz")
    with pytest.raises(TwinDataError, match="replay window"):
        simulate(_panel([[1.0] * 5]), Fixed(0), start=10)


def test_from_frame_pivots_any_canonical_file(tmp_path):
    frame = pd.DataFrame(
        {
            "store_id": ["A", "A", "A", "B"],
            "sku": ["x", "x", "y", "x"],
            "date": ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-01"],
            "units": [2, 5, 1, 100],
            "price": [1.0, 1.0, 3.0, 1.0],
        }
    )
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path)
    p = DemandPanel.from_frame(load_canonical(path), store_id="A")
    assert p.skus.tolist() == ["x", "y"] and p.units.tolist() == [[2, 0, 5], [0, 1, 0]]
    assert p.price.tolist() == [1.0, 3.0]
    assert DemandPanel.from_frame(frame).store_id == "B"  # default: the biggest store


@pytest.mark.realdata
@pytest.mark.slow
def test_policies_on_real_online_retail_weeks(real_data_dir):
    from training.datasets import online_retail

    panel = DemandPanel.from_frame(online_retail(top_skus=25))
    start = panel.n_days - 28
    cfg = StoreConfig()
    sf = StatsForecastForecaster(select_weeks=2)
    runs = [
        simulate(panel, MinMaxPolicy(), cfg, start),
        simulate(panel, OrderUpToPolicy(sf), cfg, start, horizon=7),
    ]
    assert (
        sf.chosen in sf.candidates and runs[1].policy == f"order_up_to[statsforecast:{sf.chosen}]"
    )
    for run in runs:
        m = run.metrics()
        assert m["demand_units"] > 0 and 0.0 < m["fill_rate"] <= 1.0
        assert m["avg_inventory_units"] > 0 and m["orders_placed"] > 0
    assert 0.0 <= prediction_quality(runs[1])["auc"] <= 1.0
