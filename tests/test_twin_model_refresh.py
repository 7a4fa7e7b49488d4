"""The fleet's model refresh in the twin: the centre trains on what the store reported (its sales,
empty shelves flagged), never on the twin's hidden demand, and the gateway swaps the new bundle
in as a real gateway does (River's correction and the sales series kept)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edge_runtime.forecast.online import LevelCorrection
from tests.test_gateway_model import demand_bundle
from twin.gateway_engine import GatewayPolicy
from twin.model_refresh import ModelRefresh, centre_history
from twin.store import DemandPanel, StoreConfig, simulate


class _Centre(ModelRefresh):
    """The centre without training: hands out a fixed bundle and keeps what it was sent."""

    def __init__(self, every_days: int, bundle, keep_correction: bool = True):
        super().__init__(None, every_days, keep_correction=keep_correction)
        self.fixed, self.sent = bundle, []

    def bundle(self, panel, start, sold, empty):
        self.sent.append((sold.copy(), empty.copy()))
        return self.fixed


def _panel(days: int = 45) -> DemandPanel:
    rng = np.random.default_rng(7)
    units = rng.poisson([[3.0], [6.0], [1.5]], size=(3, days)).astype(float)
    units[:, 0] = 2.0
    dates = np.datetime64("2026-01-01") + np.arange(days)
    return DemandPanel.from_arrays("S1", ["A", "B", "C"], dates, units)


def test_the_centres_bundle_is_swapped_in_every_k_days_keeping_rivers_correction(tmp_path):
    first = demand_bundle(tmp_path / "b" / "col-7")
    second = demand_bundle(tmp_path / "b" / "col-28", "mean_28")
    panel, start = _panel(), 30
    store = StoreConfig(lead_time=2, review_period=3, capacity_days=3.0, min_capacity=1)
    made = []  # every River correction the twin's gateway makes
    centre = _Centre(5, second)
    policy = GatewayPolicy(str(first), buffer_every_days=10.0,
                           correction=lambda: made.append(LevelCorrection()) or made[-1],
                           refresh=centre)  # fmt: skip
    run = simulate(panel, policy, store, start=start)
    assert run.stockout_days().any()  # some shelves closed empty: the centre must be told
    # Swapped on the mornings of replay days 5 and 10, each time with every day before it as
    # the store reported it: what sold (not the demand) and which shelves closed empty.
    assert [s.shape for s, _ in centre.sent] == [(3, 5), (3, 10)]
    for sold, empty in centre.sent:
        days = sold.shape[1]
        np.testing.assert_array_equal(sold, run.sales[:, :days])
        np.testing.assert_array_equal(empty, run.on_hand[:, :days] == 0)
    assert (run.sales < run.demand).any()
    assert policy.swaps == [str(second)] * 2
    assert Path(policy.model.bundle.path).resolve() == Path(second).resolve()
    assert len(made) == 1 and policy.model.correction is made[0]  # River kept, as a gateway does

    still = GatewayPolicy(str(first), buffer_every_days=10.0)
    simulate(panel, still, store, start=start)
    before, after = start + 4, start + 5
    for a, b in zip(policy.trace[before], still.trace[before], strict=True):
        np.testing.assert_array_equal(a, b)  # the same model up to the swap
    assert not np.array_equal(policy.trace[after][0], still.trace[after][0])


def test_the_centres_history_is_the_first_bundles_then_the_stores_reports():
    dates = pd.date_range("2026-01-01", periods=6, freq="D")
    frame = pd.DataFrame({"store_id": "S1", "sku": ["A"] * 6, "date": dates,
                          "units": [4.0, 0.0, 5.0, 6.0, 7.0, 8.0], "price": 2.0})  # fmt: skip
    panel = DemandPanel.from_frame(frame)
    start = 3
    nothing = centre_history(frame, panel, start, np.zeros((1, 0)), np.zeros((1, 0), bool))
    pd.testing.assert_frame_equal(
        nothing.drop(columns="stockout"), frame[frame["date"] < dates[start]], check_like=True
    )
    # Day 3 sold 2 of its 6 and emptied the shelf; day 4 sold nothing on an empty shelf.
    sold, empty = np.array([[2.0, 0.0]]), np.array([[True, True]])
    h = centre_history(frame, panel, start, sold, empty)
    assert h["units"].tolist() == [4.0, 0.0, 5.0, 2.0, 0.0]
    assert h["stockout"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert h["price"].tolist() == [2.0] * 5
    # A SKU that never sold is not carried: its empty shelf is no stock-out to report.
    two = DemandPanel.from_arrays(
        "S1", ["A", "B"], panel.dates, np.vstack([panel.units, 0 * panel.units])
    )
    h = centre_history(frame, two, start, np.array([[2.0, 0.0], [0.0, 1.0]]), np.ones((2, 2), bool))
    assert h[h["sku"] == "B"][["units", "stockout"]].values.tolist() == [[1.0, 1.0]]


def test_a_refresh_can_start_rivers_correction_afresh(tmp_path):
    first = demand_bundle(tmp_path / "b" / "col-7")
    second = demand_bundle(tmp_path / "b" / "col-28", "mean_28")
    made = []
    policy = GatewayPolicy(str(first), buffer_every_days=10.0,
                           correction=lambda: made.append(LevelCorrection()) or made[-1],
                           refresh=_Centre(5, second, keep_correction=False))  # fmt: skip
    simulate(_panel(), policy, StoreConfig(lead_time=2, review_period=3), start=30)
    assert len(made) == 3 and policy.model.correction is made[-1]  # the first, then two swaps
