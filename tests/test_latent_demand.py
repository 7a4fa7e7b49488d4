"""Latent-demand recovery: an early sell-out must not be extrapolated into an absurd day, a day
seen too little in stock is no training label, and the hourly recovery and the gateway's daily
rule are one rule."""

from __future__ import annotations

import numpy as np

from feature_store.batch import Panel, close_features
from feature_store.censored_demand import close_levels
from feature_store.latent_demand import hourly_shares, recover
from training.loss_weights import weighted_training_rows

HOURS = 8


def _history(days: int = 21) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One series selling 1 an hour over an 8-hour day (8 a day) on every in-stock day."""
    sales = np.ones((1, days, HOURS))
    out = np.zeros((1, days, HOURS), bool)
    return sales, out, np.arange(days) % 7


def _recover(sales, out, wd):
    """Profile and usual level learnt on the days before the last, as a backtest does."""
    before = np.arange(sales.shape[1]) < sales.shape[1] - 1
    shares = hourly_shares(sales, out, wd, np.array([0]), np.array([0]), before)
    return recover(sales, out, shares, wd, before)


def test_an_early_sell_out_is_not_extrapolated_into_an_absurd_day():
    sales, out, wd = _history()
    # The last day sold its 6 units in the first 2 hours (a brisk morning: that is why it sold
    # out) and was empty for the other 6: its own rate alone says 24, three times the usual 8.
    sales[0, -1] = [3, 3, 0, 0, 0, 0, 0, 0]
    out[0, -1, 2:] = True
    latent = _recover(sales, out, wd)
    day = latent.demand[0, -1].sum()
    assert 6.0 <= day <= 2 * 8.0
    assert latent.in_stock_share[0, -1] == 0.25
    assert not latent.labelled[0, -1] and latent.labelled[0, :-1].all()
    assert (latent.demand[0, -1, :2] == 3).all()  # what sold in stock is never changed


def test_a_late_stock_out_takes_the_days_own_rate():
    sales, out, wd = _history()
    sales[0, -1] = [2, 2, 2, 2, 2, 2, 2, 0]  # a busy day that emptied for its last hour
    out[0, -1, -1] = True
    day = _recover(sales, out, wd).demand[0, -1].sum()
    assert 14.0 + 1.0 < day <= 16.0  # nearer its own 2 an hour than the usual 1


def test_a_day_out_all_day_is_the_daily_rule():
    """Nothing seen in stock: the hourly recovery is the gateway's day-close rule, max(sold,
    level), with the series' usual level."""
    sales, out, wd = _history()
    sales[0, -1] = 0.0
    sales[0, -1, 0] = 0.5  # sold in an hour flagged out (the shelf emptied during it)
    out[0, -1] = True
    latent = _recover(sales, out, wd)
    day = close_levels(np.array([8.0]), np.array([0.5]), np.array([True]))
    np.testing.assert_allclose(latent.demand[0, -1].sum(), day[0])
    assert not latent.labelled[0, -1]


def test_unlabelled_days_feed_features_but_weigh_nothing_in_the_loss():
    units = np.tile(np.arange(1.0, 41.0), (3, 1))
    panel = Panel(keys=[("S", str(i)) for i in range(3)], start=np.datetime64("2024-01-01"),
                  units=units)  # fmt: skip
    labelled = np.ones(units.shape, bool)
    labelled[:, 30:] = False
    close = close_features(panel)
    _, y, w = weighted_training_rows(panel, close, last_day=39, labelled=labelled)
    _, _, w_all = weighted_training_rows(panel, close, last_day=39)
    late = y > 30  # target days 30.. (units = day + 1)
    assert late.any() and (w.mean[late] == 0).all() and (w.quantile[late] == 0).all()
    assert (w.mean[~late] > 0).all() and (w_all.mean[late] > 0).all()
