"""Censored demand: what would have sold in the hours a shelf was empty.

On a stock-out hour the sales are not the demand. We recover it from the intraday profile: the
share of a day's demand that falls in each hour, learnt on in-stock hours of the same series and
weekday, and shrunk towards the product's profile across stores, then the category's, when the
series' own in-stock history is thin. A day's level is its in-stock sales divided by the profile
share of its in-stock hours; an out-of-stock hour's demand is that level times the hour's share.
When too little of the day was in stock to measure its level, the series' usual level (the mean
of its measurable days) stands in.

Recovered demand is a label for learning (training, the gateway's online updates, the twin); it
is returned apart from the sales and must never be booked as a sale in the ledger.

Everything is numpy on dense ``[series, day, hour]`` arrays, so the gateway can run the same code
on its rolling window of days.

>>> import numpy as np
>>> sales = np.array([[[0, 2, 2, 0], [0, 2, 0, 0]]], float)   # 1 series, 2 days, 4 hours
>>> out = np.array([[[0, 0, 0, 0], [0, 0, 1, 1]]], bool)       # day 2 empty from hour 2
>>> shares = hourly_shares(sales, out, np.array([0, 0]), np.array([0]), np.array([0]))
>>> latent = recover(sales, out, shares, np.array([0, 0]))
>>> latent.demand[0, 1].tolist(), latent.recovered[0, 1].tolist()
([0.0, 2.0, 2.0, 0.0], [0.0, 0.0, 2.0, 0.0])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

WEEKDAYS = 7
# In-stock series-weekday days at which a series' own profile and its pooled one weigh the same.
SHRINK_DAYS = 4.0
# Below this profile share of in-stock hours a day's own level is too noisy to extrapolate from.
MIN_MEASURED_SHARE = 0.25


@dataclass(frozen=True)
class LatentDemand:
    """``demand`` = sales on in-stock hours, recovered demand on out-of-stock hours;
    ``recovered`` holds only the recovered part (zero where the shelf was in stock)."""

    demand: np.ndarray
    recovered: np.ndarray


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
    :func:`hourly_shares`) and each day's in-stock sales; a series' usual level (for days too
    short of stock to measure) comes from ``days`` only (a bool per day) when given, so later
    days do not leak into earlier ones."""
    out = np.asarray(out, bool)
    sales = np.asarray(sales, float)
    share = shares[:, np.asarray(weekday), :]  # [series, day, hour]
    measured = np.where(out, 0.0, share).sum(axis=2)
    in_sales = np.where(out, 0.0, sales).sum(axis=2)
    ok = measured >= MIN_MEASURED_SHARE
    day_level = np.where(ok, in_sales / np.maximum(measured, 1e-9), np.nan)
    known = ok if days is None else ok & np.asarray(days, bool)[None, :]
    with warnings.catch_warnings():  # a series with no measurable day has no usual level
        warnings.simplefilter("ignore", RuntimeWarning)
        usual = np.nanmean(np.where(known, day_level, np.nan), axis=1, keepdims=True)
    level = np.where(ok, day_level, np.nan_to_num(usual, nan=0.0))
    recovered = np.where(out, level[:, :, None] * share, 0.0)
    return LatentDemand(demand=np.where(out, recovered, sales), recovered=recovered)
