"""`shelfcast simulate`: policies compared on the same demand, parameters chosen on validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shelfcast.cli import main
from twin.simulate import compare_policies, interpolate_lost
from twin.store import DemandPanel, StoreConfig


def _frame(n_skus: int = 12, days: int = 260, seed: int = 0) -> pd.DataFrame:
    """Weekly-seasonal, partly intermittent demand for one store, with prices."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-02", periods=days, freq="D")
    weekly = 1.0 + 0.6 * (dates.dayofweek >= 4)
    rows = []
    for i in range(n_skus):
        level = rng.uniform(0.3, 8.0)
        mu = level * weekly
        units = rng.negative_binomial(1.0, 1.0 / (1.0 + mu))  # overdispersed, intermittent
        rows.append(
            pd.DataFrame(
                {
                    "store_id": "S1",
                    "sku": f"sku{i:02d}",
                    "date": dates,
                    "units": units,
                    "price": round(rng.uniform(1, 9), 2),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """A real (small) bundle: LightGBM demand model on the feature store, exported to ONNX."""
    from feature_store.batch import close_features, panel_from_frame, training_rows
    from feature_store.spec import names, spec_dict
    from models.bundle import write_bundle
    from models.demand import DemandModel

    frame = _frame()
    train = frame[frame["date"] < frame["date"].max() - pd.Timedelta(days=56)]
    panel = panel_from_frame(train)
    close = close_features(panel)
    X, y = training_rows(panel, close, panel.n_days - 1)
    model = DemandModel(n_estimators=20, num_leaves=15, min_child_samples=20).fit(X, y)
    out = tmp_path_factory.mktemp("bundle") / "b"
    meta = {"model_version": "t1", "training_data": {"end": str(train["date"].max().date())}}
    return write_bundle(out, {"demand": model.to_onnx(len(names()))}, spec_dict(), meta)


def test_interpolation_between_grid_points():
    curve = [(0.5, 100.0, 50.0), (1.0, 200.0, 30.0)]
    assert interpolate_lost(curve, 150.0) == pytest.approx(40.0)
    assert interpolate_lost(curve, 250.0) is None


def test_all_three_policies_on_the_same_demand(tiny_bundle):
    panel = DemandPanel.from_frame(_frame())
    cmp = compare_policies(
        panel,
        ["shelfcast", "statsforecast"],
        StoreConfig(),
        bundle=str(tiny_bundle),
        test_days=28,
        val_days=28,
        z_grid=(0.0, 1.0),
        minmax_grid=(0.0, 3.0),
        baselines=("seasonal_naive", "ses"),
        every_days_grid=(10.0, 50.0),
    )
    rows = {r["policy"]: r for r in cmp.table()}
    assert set(rows) == {"minmax", "shelfcast", "statsforecast"}
    demand = {r["demand_units"] for r in rows.values()}
    assert len(demand) == 1  # same demand for every policy
    for r in rows.values():
        assert 0 < r["fill_rate"] <= 1 and r["avg_inventory_units"] > 0
    assert 0 <= rows["shelfcast"]["stockout_auc"] <= 1
    assert rows["shelfcast"]["name"] == "gateway[shelfcast]"
    assert set(cmp.runs["shelfcast"]) >= {10.0, 50.0}  # its own grid, not z's
    # the chosen parameter (grid, then bisection on validation) keeps within min/max's inventory there
    budget = cmp.runs["minmax"][cmp.chosen["minmax"]]["validation"].metrics()
    for family in ("shelfcast", "statsforecast"):
        chosen = cmp.runs[family][cmp.chosen[family]]
        assert "test" in chosen
        inv = chosen["validation"].metrics()["avg_inventory_units"]
        assert inv <= budget["avg_inventory_units"] or cmp.notes
    s = cmp.summary()
    assert "shelfcast_lost_sales_reduction_vs_minmax" in s


def test_cli_runs_on_any_canonical_file(tmp_path, capsys):
    path = tmp_path / "sales.csv"
    _frame(n_skus=6, days=200).to_csv(path, index=False)
    out = tmp_path / "twin.json"
    code = main(
        [
            "simulate",
            "--data",
            str(path),
            "--policy",
            "statsforecast",
            "--test-days",
            "21",
            "--val-days",
            "21",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert {p["policy"] for p in result["policies"]} == {"minmax", "statsforecast"}
    assert "| minmax |" in capsys.readouterr().out


def test_cli_says_how_to_get_a_bundle(tmp_path, capsys):
    path = tmp_path / "sales.csv"
    _frame(n_skus=2, days=150).to_csv(path, index=False)
    code = main(["simulate", "--data", str(path), "--bundle", str(tmp_path / "none")])
    assert code == 2 and "shelfcast train" in capsys.readouterr().err


def test_summary_says_none_when_min_max_loses_nothing():
    frame = _frame(n_skus=3, days=150).assign(units=2.0)  # steady demand: nobody runs out
    panel = DemandPanel.from_frame(frame)
    cmp = compare_policies(
        panel, ["statsforecast"], StoreConfig(), test_days=21, val_days=21,
        z_grid=(1.0,), minmax_grid=(3.0,), baselines=("ses",), refine=0,
    )  # fmt: skip
    assert cmp.test_run("minmax").metrics()["lost_units"] == 0
    assert cmp.summary()["statsforecast_lost_sales_reduction_vs_minmax"] is None


def test_shelfcast_in_the_twin_is_the_gateways_day_close_and_policy(tiny_bundle):
    """The twin's shelfcast runs the gateway's own objects; a day the shelf closed empty
    reaches the gateway's series as its estimated demand (never below what sold, above it
    somewhere), every other day as what sold."""
    from edge_runtime.decide.day_close import DayCloseModel
    from edge_runtime.decide.forecast_policy import ForecastDecisionPolicy
    from twin.gateway_engine import GatewayPolicy
    from twin.store import simulate

    panel = DemandPanel.from_frame(_frame())
    policy = GatewayPolicy(str(tiny_bundle), z=-1.0)  # lean: the shelf runs empty
    run = simulate(panel, policy, StoreConfig(), panel.n_days - 28, horizon=2)
    assert isinstance(policy.model, DayCloseModel)
    assert isinstance(policy.decisions.policy, ForecastDecisionPolicy)
    out = run.stockout_days()
    assert out.any() and run.orders.sum() > 0
    raised = 0
    for i, sku in enumerate(panel.skus):
        learnt = np.array(policy.sales.series[sku].units)[-28:]
        assert (learnt[~out[i]] == run.sales[i][~out[i]]).all()
        assert (learnt[out[i]] >= run.sales[i][out[i]]).all()
        raised += int((learnt[out[i]] > run.sales[i][out[i]]).sum())
    assert raised > 0


def test_clairvoyant_level_reference_needs_no_bundle_and_knows_the_future_level():
    """The reference is told the next 28 days' true mean: on demand that jumps in the test
    weeks it loses fewer units than min/max, and it runs without a model bundle."""
    frame = _frame(n_skus=6, days=200)
    jump = frame["date"] >= frame["date"].max() - pd.Timedelta(days=27)
    frame.loc[jump, "units"] *= 3
    panel = DemandPanel.from_frame(frame)
    cmp = compare_policies(
        panel, ["clairvoyant_level"], StoreConfig(), test_days=28, val_days=28,
        minmax_grid=(3.0,), every_days_grid=(20.0, 100.0), refine=0,
    )  # fmt: skip
    test = cmp.test_run("clairvoyant_level").metrics()
    assert test["lost_units"] < cmp.test_run("minmax").metrics()["lost_units"]
    assert "clairvoyant_level_lost_sales_reduction_vs_minmax" in cmp.summary()


def test_base_level_reference_knows_the_ordinary_level_but_not_the_large_orders():
    """Told the next 28 days with large orders clipped at 5x the SKU's 91-day mean: a ramp in
    ordinary demand shows in its level, a one-day 1,000-unit order does not."""
    from twin.policies import ClairvoyantLevelForecaster
    from twin.simulate import BASE_LEVEL_SPIKE_CLIP
    from twin.store import StoreState

    days = 150
    units = np.full((2, days), 2.0)
    units[0, 121:] = 4.0  # SKU 0: ordinary demand doubles from day 121
    units[1, 130] = 1000.0  # SKU 1: one wholesale order
    panel = DemandPanel.from_arrays("s", ["ramp", "order"], np.datetime64("2024-01-01") +
                                    np.arange(days), units)  # fmt: skip
    state = StoreState(120, np.zeros(2), np.zeros(2), units[:, :121], np.ones(2),
                       np.full(2, 1e6), StoreConfig())  # fmt: skip
    told = {}
    for clip in (None, BASE_LEVEL_SPIKE_CLIP):
        f = ClairvoyantLevelForecaster(spike_clip=clip)
        f.prepare(panel, 100, StoreConfig())
        told[f.name] = f.forecast(state, 9)[0][:, 0]
    assert told["clairvoyant_level"][0] == told["clairvoyant_base_level"][0] == 4.0
    assert told["clairvoyant_level"][1] == pytest.approx((27 * 2 + 1000) / 28)
    assert told["clairvoyant_base_level"][1] == pytest.approx((27 * 2 + 10) / 28)
    cmp = compare_policies(
        panel, ["clairvoyant_base_level"], StoreConfig(), test_days=28, val_days=28,
        minmax_grid=(3.0,), every_days_grid=(20.0,), refine=0,
    )  # fmt: skip
    assert "clairvoyant_base_level_lost_sales_reduction_vs_minmax" in cmp.summary()


def _late_hit(tmp_path) -> str:
    """Two SKUs over 120 days: "steady" sells 5 a day throughout, "late" nothing until its
    1,000-a-day run in the last 20 days."""
    dates = pd.date_range("2024-01-01", periods=120)
    late = np.where(np.arange(120) >= 100, 1000.0, 0.0)
    frame = pd.concat(
        [
            pd.DataFrame({"store_id": "S", "sku": "steady", "date": dates, "units": 5.0}),
            pd.DataFrame({"store_id": "S", "sku": "late", "date": dates, "units": late}),
        ]
    )
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_top_skus_are_ranked_before_the_test_window(tmp_path):
    from twin.simulate import load_panel

    panel = load_panel(_late_hit(tmp_path), None, top_skus=1, test_days=20)
    assert panel.skus.tolist() == ["steady"]
    assert str(panel.dates[-1]) == "2024-04-29"


def test_test_start_ends_the_replay_and_ranks_before_it(tmp_path):
    from twin.simulate import load_panel
    from twin.store import TwinDataError

    path = _late_hit(tmp_path)
    panel = load_panel(path, None, top_skus=1, test_days=14, test_start="2024-03-01")
    assert str(panel.dates[-1]) == "2024-03-14" and panel.skus.tolist() == ["steady"]
    with pytest.raises(TwinDataError, match="after the data's last day 2024-04-29"):
        load_panel(path, None, top_skus=1, test_days=14, test_start="2024-04-20")


def test_cli_takes_a_test_start(tmp_path, capsys):
    code = main(
        [
            "simulate",
            "--data",
            _late_hit(tmp_path),
            "--policy",
            "clairvoyant_level",
            "--test-start",
            "2024-03-15",
            "--test-days",
            "14",
            "--val-days",
            "14",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "test weeks 2024-03-15 .. 2024-03-28" in out
