"""Censored demand: what would have sold in the hours a shelf was empty.

On a stock-out hour the sales are not the demand. We recover it from the intraday profile: the
share of a day's demand that falls in each hour, learnt on in-stock hours of the same series and
weekday, and shrunk towards the product's profile across stores, then the category's, when the
series' own in-stock history is thin. The day's demand then follows the one rule for a day the
shelf was out for part of (:func:`feature_store.censored_demand.censored_day_demand`): what sold
in stock, plus the out-of-stock part of the profile at the day's rate, that rate being the
in-stock sales over the in-stock share, shrunk towards the series' usual level (its in-stock
sales over its in-stock share, pooled over the days given). The shrinkage is what keeps an early
sell-out honest: a shelf that emptied at 8:00 sold out because its first hours were brisk, so
their rate, extrapolated alone over the whole day, overstates the day (a few units over a small
share make a huge multiplier); with little of the day seen the usual level weighs more.

A day seen in stock over less than :data:`MIN_LABEL_SHARE` of its profile still gets a recovered
value (the features need one for every day) but is no training label (``labelled``): its demand
is mostly the prior, not evidence, and a recovered sell-out day is a day of high demand that a
forecast scored on in-stock days would be pulled towards.

Recovered demand is a label for learning (training, the gateway's online updates, the twin); it
is returned apart from the sales and must never be booked as a sale in the ledger.

Everything is numpy on dense ``[series, day, hour]`` arrays, so the gateway can run the same code
on its rolling window of days.

>>> import numpy as np
>>> sales = np.array([[[0, 2, 2, 0], [0, 2, 0, 0]]], float)   # 1 series, 2 days, 4 hours
>>> out = np.array([[[0, 0, 0, 0], [0, 0, 1, 1]]], bool)       # day 2 empty from hour 2
>>> shares = hourly_shares(sales, out, np.array([0, 0]), np.array([0]), np.array([0]))
>>> latent = recover(sales, out, shares, np.array([0, 0]))
>>> latent.demand[0, 1].round(3).tolist(), latent.recovered[0, 1].round(3).tolist()
([0.0, 2.0, 2.0, 0.0], [0.0, 0.0, 2.0, 0.0])
>>> latent.in_stock_share.round(3).tolist(), latent.labelled.tolist()
([[1.0, 0.5]], [[True, False]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feature_store.censored_demand import censored_day_demand

WEEKDAYS = 7
# In-stock series-weekday days at which a series' own profile and its pooled one weigh the same.
SHRINK_DAYS = 4.0
# A day seen in stock over less of its profile than this is no training label (see above).
MIN_LABEL_SHARE = 0.98


@dataclass(frozen=True)
class LatentDemand:
    """``demand`` = sales on in-stock hours, recovered demand on out-of-stock hours;
    ``recovered`` holds only the recovered part (zero where the shelf was in stock);
    ``in_stock_share`` the share of each series-day's expected demand that fell in its in-stock
    hours (1 = in stock all day).

    >>> demand, recovered = np.array([[4.0, 6.0]]), np.array([[0.0, 2.0]])
    >>> latent = LatentDemand(demand, recovered, in_stock_share=np.array([[1.0, 0.4]]))
    >>> latent.labelled.tolist()  # the second day was in stock for too little of its demand
    [[True, False]]
    """

    demand: np.ndarray
    recovered: np.ndarray
    in_stock_share: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        """``[series, day]``: days seen in stock enough to be a training label."""
        return self.in_stock_share >= MIN_LABEL_SHARE


def _group_rates(rate_sum, n, groups):
    """Sum per-series ``[series, weekday, hour]`` sales and in-stock counts within each group."""
    ids, inverse = np.unique(groups, return_inverse=True)
    tot = np.zeros((len(ids), *rate_sum.shape[1:]))
    cnt = np.zeros_like(tot)
    np.add.at(tot, inverse, rate_sum)
    np.add.at(cnt, inverse, n)
    return tot[inverse], cnt[inverse]


def _shares(total, count):
    rate = np.where(count > 0, total / np.maximum(count, 1e-9), 0.0)
    day = rate.sum(axis=-1, keepdims=True)
    return np.where(day > 0, rate / np.where(day > 0, day, 1.0), 1.0 / rate.shape[-1])


def hourly_shares(
    sales: np.ndarray,
    out: np.ndarray,
    weekday: np.ndarray,
    product: np.ndarray,
    category: np.ndarray,
    days: np.ndarray | None = None,
) -> np.ndarray:
    """Share of a day's demand in each hour, ``[series, weekday, hour]``, from in-stock hours
    (of ``days`` only, a bool per day, when given: e.g. the training days of a backtest)."""
    instock = ~np.asarray(out, bool)
    if days is not None:
        instock = instock & np.asarray(days, bool)[None, :, None]
    onehot = np.eye(WEEKDAYS)[np.asarray(weekday)]  # [day, weekday]
    total = np.einsum("sdh,dw->swh", np.where(instock, sales, 0.0), onehot)
    count = np.einsum("sdh,dw->swh", instock.astype(float), onehot)
    cat_total, cat_count = _group_rates(total, count, category)
    prod_total, prod_count = _group_rates(total, count, product)
    cat = _shares(cat_total, cat_count)
    # Each level is shrunk to the next coarser one by how many in-stock days it has seen.
    n_prod = prod_count.mean(axis=-1, keepdims=True)
    prod = (n_prod * _shares(prod_total, prod_count) + SHRINK_DAYS * cat) / (n_prod + SHRINK_DAYS)
    n_own = count.mean(axis=-1, keepdims=True)
    own = _shares(total, count)
    return (n_own * own + SHRINK_DAYS * prod) / (n_own + SHRINK_DAYS)


def recover(
    sales: np.ndarray,
    out: np.ndarray,
    shares: np.ndarray,
    weekday: np.ndarray,
    days: np.ndarray | None = None,
) -> LatentDemand:
    """Latent hourly demand of every series-day from the profile ``shares`` (see
    :func:`hourly_shares`) and each day's in-stock sales; a series' usual level (the prior of
    a day seen only in part) comes from ``days`` only (a bool per day) when given, so later
    days do not leak into earlier ones."""
    out = np.asarray(out, bool)
    sales = np.asarray(sales, float)
    share = shares[:, np.asarray(weekday), :]  # [series, day, hour]
    in_share = np.where(out, 0.0, share).sum(axis=2)
    in_sales = np.where(out, 0.0, sales).sum(axis=2)
    known = np.ones(in_share.shape, bool) if days is None else np.asarray(days, bool)[None, :]
    seen = np.where(known, in_share, 0.0).sum(axis=1, keepdims=True)
    usual = np.where(
        seen > 0, np.where(known, in_sales, 0.0).sum(axis=1, keepdims=True) / np.maximum(seen, 1e-9),
        np.nan,
    )  # fmt: skip
    sold = sales.sum(axis=2)
    day = censored_day_demand(sold, in_sales, in_share, np.broadcast_to(usual, sold.shape))
    # The demand the day lacks is spread over its out-of-stock hours by the profile.
    out_share = np.where(out, share, 0.0)
    spread = out_share / np.maximum(out_share.sum(axis=2, keepdims=True), 1e-12)
    recovered = np.where(out, sales + (day - sold)[:, :, None] * spread, 0.0)
    demand = np.where(out, recovered, sales)
    return LatentDemand(demand=demand, recovered=recovered, in_stock_share=in_share)
