"""The mlforecast peers and the statsforecast baselines run on the same panel, grain, cutoffs and
rows as shelfcast, and the backtest scores every method on the same steps."""

from __future__ import annotations

import numpy as np
import pytest

from feature_store.batch import Panel
from training.backtest import MODEL, _score, backtest
from training.metrics import Scales, rmsse
from training.peers import PEERS, peer_forecasts


@pytest.fixture(scope="module")
def walmart_weeks(real_data_dir):
    """Twelve real Walmart store x department series, at week grain."""
    from feature_store.batch import panel_from_frame
    from training.datasets import walmart_weekly
    from training.engine import panel_series

    panel = panel_from_frame(walmart_weekly(), known_ahead=True)
    return panel_series(panel, np.arange(0, 12 * 97, 97))


@pytest.mark.realdata
def test_peers_forecast_weeks_on_real_series(walmart_weeks):
    cut = walmart_weeks.n_days - 14
    series = np.arange(len(walmart_weeks.keys))
    fc, seconds = peer_forecasts(walmart_weeks, series, cut, 13, trees=20)
    assert set(fc) == set(PEERS) == set(seconds)
    for values in fc.values():
        assert values.shape == (12, 13) and (values >= 0).all()
    # A peer that learnt something forecasts each department near its own level (departments
    # differ a thousandfold), not one global level.
    level = np.nanmean(walmart_weeks.units[series, cut - 12 : cut + 1], axis=1)
    for values in fc.values():
        assert 0.7 < np.median(values.mean(axis=1) / level) < 1.4


@pytest.mark.realdata
def test_backtest_scores_shelfcast_against_every_peer_at_week_grain(walmart_weeks):
    res = backtest(
        walmart_weeks,
        folds=1,
        horizon=13,
        model_params={"n_estimators": 20},
        stride=4,
        min_history=52,
        peers=True,
    )
    df = res.frame()
    methods = set(df["method"])
    assert {MODEL, *PEERS, "SeasonalNaive", "AutoETS"} <= methods
    summary = res.summary()
    assert 0.0 <= summary["win_rate_vs_best_peer"] <= 1.0
    assert summary["fit_seconds_per_1000_series_years"] > 0
    for peer in PEERS:
        assert summary[f"{peer}_fit_seconds_per_1000_series_years"] > 0
    # The seasonal naive at week grain repeats the weeks a year (52 weeks) back.
    cut = walmart_weeks.n_days - 14
    row = df[(df["method"] == "SeasonalNaive")].iloc[0]
    s = next(i for i, k in enumerate(walmart_weeks.keys) if "/".join(k) == row["series"])
    y = walmart_weeks.units[s, cut + 1 : cut + 14]
    naive = walmart_weeks.units[s, cut + 1 - 52 : cut + 14 - 52]
    assert row["rmsse"] == pytest.approx(
        rmsse(y, naive, Scales.of(walmart_weeks.units[s, : cut + 1]))
    )


def test_a_score_mask_scores_only_the_marked_steps():
    y = np.array([1.0, 9.0, 1.0])
    f = {"p": np.array([1.0, 0.0, 1.0])}
    s = Scales.of(np.array([0.0, 1.0, 0.0, 1.0]))
    assert _score(y, f, s)["rmsse"] > 0
    assert _score(y, f, s, np.array([True, False, True]))["rmsse"] == 0.0


def test_backtest_skips_a_series_with_no_scored_step():
    rng = np.random.default_rng(0)
    units = rng.poisson(3.0, size=(3, 120)).astype(float)
    panel = Panel(
        keys=[("S", "A"), ("S", "B"), ("S", "C")], start=np.datetime64("2024-01-01"), units=units
    )
    mask = np.ones_like(units, dtype=bool)
    mask[1, -14:] = False  # series B out of stock over the whole test window
    res = backtest(
        panel,
        folds=1,
        horizon=14,
        model_params={"n_estimators": 10},
        baselines=False,
        score_mask=mask,
    )
    assert sorted(set(res.frame()["series"])) == ["S/A", "S/C"]


def test_peers_read_a_planned_price_as_shelfcast_does():
    from training.peers import _frames

    units = np.ones((1, 10))
    price = np.linspace(1.0, 0.5, 10)[None, :]
    planned = Panel(
        keys=[("S", "A")],
        start=np.datetime64("2024-01-01"),
        units=units,
        price=price,
        known_ahead=True,
    )
    train, future = _frames(planned, np.array([0]), cutoff=6, horizon=3, since=0)
    assert train["price"].tolist() == pytest.approx(price[0, :7].tolist())
    assert future["price"].tolist() == pytest.approx(price[0, 7:].tolist())
    # A price seen only on the days something sold is not planned: nobody reads it ahead.
    seen = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=units, price=price)
    assert "price" not in _frames(seen, np.array([0]), cutoff=6, horizon=3, since=0)[0]
