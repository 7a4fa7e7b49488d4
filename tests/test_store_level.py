"""The store's level factor: a pooled, clipped ratio of in-stock sales to the day-ahead
forecast, and the day close scaling every SKU's forecast by it (real ONNX Runtime bundle)."""

from __future__ import annotations

import numpy as np

from edge_runtime.forecast.store_level import StoreLevel


def test_the_level_pools_the_skus_and_a_wholesale_day_cannot_carry_it():
    level = StoreLevel(power=1.0, prior_days=0.0)
    forecast = np.full(20, 2.0)
    for _ in range(40):
        level.learn_day(forecast, np.full(20, 2.2))
    assert abs(level.factor(40.0) - 1.1) < 1e-9  # the store sells 1.1x its forecast
    wholesale = np.full(20, 2.2)
    wholesale[0] = 500.0  # one SKU's order of 250 days: clipped at 5x its forecast
    level.learn_day(forecast, wholesale)
    assert level.factor(40.0) < 1.25


def test_empty_shelves_and_closing_days_teach_nothing():
    level = StoreLevel(power=1.0, prior_days=0.0)
    level.learn_day(np.full(4, 2.0), np.full(4, 2.0))
    before = level.factor(8.0)
    sold_out = np.array([0.0, 0.0, 9.0, 0.0])
    level.learn_day(np.full(4, 2.0), sold_out, in_stock=np.array([False, False, False, False]))
    level.learn_day(np.full(4, 2.0), np.zeros(4))  # the store did not trade
    assert level.factor(8.0) == before == 1.0


def test_the_day_close_scales_every_skus_forecast_by_the_stores_level(tmp_path):
    from edge_runtime.decide.day_close import DayCloseModel
    from edge_runtime.forecast.daily_sales import DailySales, SaleEvent
    from edge_runtime.forecast.online import LevelCorrection
    from feature_store.spec import FEATURE_STORE_VERSION
    from models.bundle import load_bundle
    from tests.test_gateway_model import demand_bundle

    bundle = load_bundle(demand_bundle(tmp_path / "b" / "col-7"), FEATURE_STORE_VERSION)
    skus = ["A", "B", "C"]

    def run(store_level):
        held_river = LevelCorrection(bounds=(1.0, 1.0))  # the store's level alone moves it
        model = DayCloseModel(
            bundle, forecast_days=3, correction=held_river, store_level=store_level
        )
        sales, table = DailySales(), None
        for d in range(40):
            day = np.datetime64("2026-01-01") + d
            per_day = 2.0 + 0.25 * d  # the store rises faster than a 7-day mean follows
            at = f"{day}T10:00:00+00:00"
            sales.observe([SaleEvent(s, "sale", per_day, at) for s in skus])
            closed = sales.close_until(int(day.astype(np.int64)) + 1)
            model.learn(closed)
            table = model.rescore(sales)
        return model, table

    neutral, held = run(StoreLevel(bounds=(1.0, 1.0)))
    model, table = run(None)  # the day close's own store level
    central = model.central.mean + model.shift[:, None, None]
    factor = model.store_level.factor(float(central[:, 0, 0].sum()))
    assert factor > 1.02  # sales ran above the day-ahead forecast
    np.testing.assert_allclose(table.mean, central * factor)
    np.testing.assert_allclose(held.mean, neutral.central.mean + neutral.shift[:, None, None])
