"""Censored demand, one rule everywhere: a day whose shelf closed empty counts its estimated
demand in training (batch), in the gateway's streaming series and day close (real SQLite, real
ONNX Runtime), and in the twin (which runs the gateway's objects)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from edge_runtime.forecast.daily_sales import DailySales, DayUnits, SaleEvent
from edge_runtime.gateway import Gateway
from feature_store.batch import panel_from_frame
from feature_store.censored_demand import InStockLevel, shelf_empty, uncensor
from tests.test_gateway_model import config, demand_bundle, ev


def test_batch_and_streaming_give_the_same_demand():
    rng = np.random.default_rng(3)
    units = rng.negative_binomial(1, 0.3, size=(20, 120)).astype(float)
    units[:5, :30] = np.nan  # series that start later
    empty = rng.random(units.shape) < 0.2
    batch = uncensor(units, empty)
    level = InStockLevel()
    for s in range(units.shape[0]):
        for t in range(units.shape[1]):
            if np.isnan(units[s, t]):
                assert np.isnan(batch[s, t])
                continue
            assert level.close(str(s), units[s, t], bool(empty[s, t])) == batch[s, t]
    assert (batch[empty & ~np.isnan(units)] >= units[empty & ~np.isnan(units)]).all()
    assert (batch[~empty] == units[~empty])[~np.isnan(units[~empty])].all()


def test_only_an_empty_shelf_is_censored_not_a_ledger_short_of_receipts():
    assert shelf_empty(np.array([0, 1, -3])).tolist() == [True, False, False]


def test_training_panel_learns_a_stockout_day_as_its_demand():
    days = pd.date_range("2024-01-01", periods=6)
    frame = pd.DataFrame({"store_id": "S", "sku": "A", "date": days,
                          "units": [4.0, 4, 4, 4, 1, 4], "stockout": [0, 0, 0, 0, 1, 0]})  # fmt: skip
    assert panel_from_frame(frame).units[0].tolist() == [4.0] * 6
    assert panel_from_frame(frame.drop(columns="stockout")).units[0, 4] == 1.0


def test_a_censored_step_feeds_the_features_but_is_no_label():
    from feature_store.batch import close_features, training_index
    from training.loss_weights import weighted_training_rows

    days = pd.date_range("2024-01-01", periods=70)
    empty = np.zeros(70)
    empty[[30, 40, 50]] = 1  # closed with an empty shelf
    frame = pd.DataFrame({"store_id": "S", "sku": "A", "date": days, "units": 5.0,
                          "stockout": empty})  # fmt: skip
    frame.loc[[30, 40, 50], "units"] = 1.0
    panel = panel_from_frame(frame)
    assert np.flatnonzero(panel.censored[0]).tolist() == [30, 40, 50]
    assert panel.units[0, 30] == 5.0  # the features still read its estimated demand
    _, _, w = weighted_training_rows(panel, close_features(panel), last_day=69, stride=1)
    _, day, horizon = training_index(panel, 69, stride=1)  # the same rows, in the same order
    censored = np.isin(day + horizon, [30, 40, 50])
    assert (w.mean[censored] == 0).all() and (w.mean[~censored] > 0).all()
    assert panel_from_frame(frame.drop(columns="stockout")).censored is None


def test_daily_sales_close_an_empty_shelf_day_at_its_level():
    def day(d: int, qty: float) -> list[SaleEvent]:
        return [SaleEvent("A", "sale", qty, f"2026-01-{d:02d}T10:00:00+00:00")]

    sales = DailySales()
    for d in range(1, 5):
        sales.observe(day(d, 3.0))
    closed = sales.observe(day(6, 1.0), empty={"A"})  # day 4 sold 3, day 5 nothing: both empty
    assert [units["A"] for _, units in closed] == [3.0, 3.0]
    assert [sorted(units.censored) for _, units in closed] == [["A"], ["A"]]  # no labels
    assert list(sales.series["A"].units) == [3.0] * 5
    assert list(sales.history.matrix(["A"])[0][:5]) == [3.0] * 5


def test_a_stockout_day_does_not_lower_the_gateways_next_forecast(tmp_path):
    """A sells 3 a day until its 12 units are gone (day 4); day 5 it sells nothing because the
    shelf is empty. The forecast (the bundle's mean is the 7-day mean) made at day 5's close
    stays at 3; learnt as a zero day it would fall to 12 / 5."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    events = [ev("r", "A", "receipt", 12, 1, hour=8)]
    for d in range(1, 7):  # B never received anything: a ledger short of receipts, not empty
        events += [ev(f"a{d}", "A", "sale", 3, d)] if d < 5 else []
        events += [ev(f"b{d}", "B", "sale", 1, d)]  # B's day 6 closes day 5
    with Gateway(config(tmp_path, bundle)) as gw:
        for e in events:
            gw.ingest([e], "pos")
        assert gw.ledger.stock("A").on_hand == 0
        assert list(gw.sales.series["A"].units) == [3.0] * 5
        mean, _ = gw.model.central.lookup("A", "2026-01-06T12:00:00+01:00")
        assert mean == 3.0
        assert list(gw.sales.series["B"].units) == [1.0] * 5  # in stock: never lifted


def test_rivers_correction_does_not_learn_a_censored_day(tmp_path):
    """The gateway's online learning treats a censored day as central training does: its
    estimate feeds the features, its label is left out."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    events = [ev(f"a{d}", "A", "sale", 3, d) for d in range(1, 6)]
    with Gateway(config(tmp_path, bundle)) as gw:
        for e in events:
            gw.ingest([e], "pos")
        model = gw.model
        day = model.central.first_close + np.timedelta64(1, "D")
        before = model.correction.predict_one("A", 1.0)
        assert model.learn([(day, DayUnits({"A": 30.0}, censored=frozenset({"A"})))]) == 0
        assert model.correction.predict_one("A", 1.0) == before
        assert model.learn([(day, DayUnits({"A": 30.0}))]) == 1  # in stock: learnt
