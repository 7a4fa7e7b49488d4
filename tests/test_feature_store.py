"""The batch feature store against a plain per-day reference written from the spec's definitions,
plus the shape of the spec itself and features on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feature_store.batch import (
    Panel,
    close_features,
    close_index,
    feature_rows,
    panel_from_frame,
    training_rows,
)
from feature_store.spec import (
    ANOMALY_FEATURES,
    DAYS_SINCE_CAP,
    EWM_ALPHAS,
    FEATURES,
    LAGS,
    MAX_WINDOW,
    WINDOWS,
    close_names,
    ewm_name,
    names,
    spec_dict,
)


def reference_close(history: list[float], prices: list[float]) -> dict[str, float]:
    """Close-day features of one series from its days so far (oldest first), by the spec's words."""
    n = len(history)
    out: dict[str, float] = {}
    for k in LAGS:
        out[f"lag_{k}"] = history[n - k] if k <= n else 0.0
    for w in WINDOWS:
        win = history[-w:]
        m = sum(win) / len(win)
        out[f"mean_{w}"] = m
        out[f"std_{w}"] = float(np.sqrt(max(sum(x * x for x in win) / len(win) - m * m, 0.0)))
        zeros = sum(1 for x in win if x == 0)
        out[f"zero_share_{w}"] = zeros / len(win)
        out[f"sale_interval_{w}"] = len(win) / max(1, len(win) - zeros)
    newest_first = history[::-1][:MAX_WINDOW]
    for a in EWM_ALPHAS:
        w = [a * (1 - a) ** k for k in range(len(newest_first))]
        out[ewm_name(a)] = sum(wk * x for wk, x in zip(w, newest_first, strict=True)) / sum(w)
        sold = sum(wk for wk, x in zip(w, newest_first, strict=True) if x > 0)
        out[ewm_name(a, "ewm_sale_share")] = sold / sum(w)
    since = DAYS_SINCE_CAP
    for i in range(n - 1, -1, -1):
        if history[i] > 0:
            since = min(n - 1 - i, DAYS_SINCE_CAP)
            break
    out["days_since_sale"] = since
    out["z_last"] = (history[-1] - out["mean_28"]) / (out["std_28"] + 1.0)
    out["age"] = min(n, MAX_WINDOW)
    known = [p for p in prices if not np.isnan(p)]
    out["price"] = known[-1] if known else 0.0
    out["promo"] = 0.0
    return out


def test_spec_is_consistent():
    assert len(set(names())) == len(FEATURES)
    kinds = [f.kind for f in FEATURES]
    assert kinds == sorted(kinds), "close features come first, then target features"
    assert set(ANOMALY_FEATURES) <= set(close_names())
    spec = spec_dict()
    assert [f["name"] for f in spec["features"]] == names()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 2), min_size=1, max_size=4).flatmap(
        lambda lead: st.tuples(
            st.just(len(lead)),
            st.lists(st.sampled_from([0, 0, 0, 1, 2, 7, 40]), min_size=1, max_size=130),
        )
    )
)
def test_batch_close_features_match_reference(case):
    lead, units = case
    row = np.array([np.nan] * lead + [float(u) for u in units])
    price = np.where(np.arange(len(row)) % 5 == 0, np.arange(len(row)) * 0.25, np.nan)
    panel = Panel(
        keys=[("S", "A")],
        start=np.datetime64("2024-01-01"),
        units=row[None, :],
        price=price[None, :],
    )
    close = close_features(panel)
    for t in range(lead, len(row)):
        ref = reference_close(list(row[lead : t + 1]), list(price[: t + 1]))
        for name, value in ref.items():
            got = close[0, t, close_index(name)]
            assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (name, t)


def test_target_features_and_same_weekday_mean():
    # 2024-01-01 is a Monday; 14 days of units equal to the day index.
    units = np.arange(14, dtype=float)[None, :]
    panel = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=units)
    close = close_features(panel)
    X = feature_rows(panel, close, np.array([0, 0]), np.array([13, 13]), np.array([1, 7]))
    col = {n: i for i, n in enumerate(names())}
    # close day 13 = Sunday 2024-01-14; +1 -> Monday 15th, +7 -> Sunday 21st.
    assert X[:, col["target_dow"]].tolist() == [0, 6]
    assert X[:, col["target_dom"]].tolist() == [15, 21]
    assert X[:, col["target_month"]].tolist() == [1, 1]
    # Mondays seen: days 0 and 7 -> mean 3.5; Sundays: days 6 and 13 -> 9.5.
    assert X[:, col["same_dow_mean"]].tolist() == [3.5, 9.5]
    assert X.dtype == np.float32


def test_horizon_out_of_range_is_refused():
    panel = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=np.zeros((1, 5)))
    with pytest.raises(ValueError, match=r"horizon must be in 1\.\.28"):
        feature_rows(panel, close_features(panel), np.array([0]), np.array([2]), np.array([29]))


def test_panel_from_frame_fills_missing_days_with_zero_after_first_row():
    df = pd.DataFrame(
        {
            "store_id": ["S", "S", "S"],
            "sku": ["A", "A", "B"],
            "date": pd.to_datetime(["2024-01-01", "2024-01-04", "2024-01-03"]),
            "units": [2.0, 5.0, 1.0],
            "event": [0.0, 1.0, 0.0],
        }
    )
    p = panel_from_frame(df)
    assert p.keys == [("S", "A"), ("S", "B")]
    assert np.array_equal(p.units[0], [2, 0, 0, 5])
    assert np.isnan(p.units[1, :2]).all() and p.units[1, 2:].tolist() == [1, 0]
    assert p.event.tolist() == [0, 0, 0, 1]


def test_training_rows_never_use_targets_after_last_day():
    rng = np.random.default_rng(1)
    panel = Panel(
        keys=[("S", "A")],
        start=np.datetime64("2024-01-01"),
        units=rng.poisson(3, (1, 120)).astype(float),
    )
    close = close_features(panel)
    X, y = training_rows(panel, close, last_day=80)
    col = {n: i for i, n in enumerate(names())}
    # the close day is recoverable from age for a series starting at day 0
    close_day = X[:, col["age"]] - 1
    assert (close_day + X[:, col["horizon"]] <= 80).all()
    assert len(X) == len(y) > 0


@pytest.mark.realdata
def test_features_on_real_online_retail(real_data_dir):
    from training.datasets import online_retail

    panel = panel_from_frame(online_retail(top_skus=20))
    close = close_features(panel)
    assert close.shape == (20, panel.n_days, len(close_names()))
    assert np.isfinite(close).all()
    X, y = training_rows(panel, close, last_day=panel.n_days - 1)
    assert np.isfinite(X).all() and (y >= 0).all()


def test_a_weekly_history_is_forecast_in_weeks_with_its_year_back():
    """Weeks stay weeks: the target calendar steps 7 days, the year back is 52 weeks."""
    weeks = 60
    dates = pd.Timestamp("2011-01-07") + pd.to_timedelta(7 * np.arange(weeks), unit="D")
    df = pd.DataFrame(
        {"store_id": "S", "sku": "A", "date": dates, "units": np.arange(weeks, dtype=float)}
    )
    panel = panel_from_frame(df)
    assert panel.grain == "week" and panel.n_days == weeks
    close = close_features(panel)
    X = feature_rows(panel, close, np.array([0, 0]), np.array([weeks - 1, weeks - 1]), [1, 4])
    col = {n: i for i, n in enumerate(names())}
    # Close week 59 (2012-02-24, a Friday); +1 week -> 2012-03-02, +4 -> 2012-03-23.
    assert X[:, col["target_dow"]].tolist() == [4, 4]
    assert X[:, col["target_dom"]].tolist() == [2, 23]
    assert X[:, col["target_month"]].tolist() == [3, 3]
    # The target week a year (52 weeks) back: weeks 8 and 11; their 3-week means 8 and 11; the
    # base is weeks 4..7 (mean 5.5), a year before the close.
    assert X[:, col["year_lag"]].tolist() == [8.0, 11.0]
    assert X[:, col["year_mean"]].tolist() == [8.0, 11.0]
    assert X[:, col["year_ratio"]] == pytest.approx([8 / 5.5, 11 / 5.5])
    # The last 4 weeks, not every 7th week.
    assert X[:, col["same_dow_mean"]].tolist() == [57.5, 57.5]


def test_a_younger_series_says_it_has_no_year_back():
    panel = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=np.ones((1, 100)))
    X = feature_rows(panel, close_features(panel), np.array([0]), np.array([99]), np.array([1]))
    assert X[0, names().index("year_ratio")] == -1.0
    assert X[0, names().index("year_lag")] == 0.0


def test_planned_promo_and_price_reach_the_target_only_when_known_ahead():
    units = np.ones((1, 40))
    price = np.full((1, 40), 4.0)
    price[0, 35:] = 3.0  # a planned cut from day 35
    promo = np.zeros((1, 40))
    promo[0, 35:] = 1.0
    col = {n: i for i, n in enumerate(names())}
    for ahead, want_ratio, want_promo in ((True, 0.75, 1.0), (False, 1.0, 0.0)):
        panel = Panel(
            keys=[("S", "A")],
            start=np.datetime64("2024-01-01"),
            units=units,
            price=price,
            promo=promo,
            known_ahead=ahead,
        )
        X = feature_rows(panel, close_features(panel), np.array([0]), np.array([30]), [6])
        assert X[0, col["target_price_ratio"]] == want_ratio
        assert X[0, col["target_promo"]] == want_promo
