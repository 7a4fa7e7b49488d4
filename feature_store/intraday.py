"""Intraday stock-out warning features: one definition for training and for a live gateway.

At a complete hour ``h`` of day ``d`` a SKU that is in stock gets a feature row from what a
gateway sees by then: the finished days before ``d`` (hourly sales and stock-out flags) and
today's hours ``0..h``. Every function here reads only those cells, so a gateway holding a
rolling ``[series, HISTORY_DAYS + 1, 24]`` window (today partly filled, later hours zero) gets the
same values for today as the batch run gets for that day from the full history.

Stock-outs in fresh grocery are mostly sell-outs of the day's delivery, so the unknown is the
day's starting stock. Its best evidence is how much sold before the shelf emptied on recent
sell-out days; set against today's sales so far and the demand expected in the next hours (from
the recovered, uncensored hourly profile), it says how close the shelf is to empty. Scaled by
the sales before each sell-out day (the stock cover), it also follows the demand trend that the
retailer's orders follow.

>>> import numpy as np
>>> sales = np.ones((2, 16, 24), np.float32); out = np.zeros((2, 16, 24), np.uint8)
>>> ctx = DayContext.of(sales, out)
>>> X = hour_features(ctx, sales, out, np.ones((2, 16)), np.zeros((2, 16)), hour=10)
>>> X.shape == (2, 16, len(FEATURES))
True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from feature_store.latent_demand import hourly_shares, recover

HORIZON_HOURS = 4
HISTORY_DAYS = 14
# What a gateway keeps per SKU: the finished days the features read, and today.
WINDOW_DAYS = HISTORY_DAYS + 1
# Hours at which a warning is made: open shop, and a 4-hour window still inside the day.
WARNING_HOURS = range(6, 19)
_EPS = 1e-3

FEATURES = (
    "hour",
    "weekday",
    "hist_out_next_max",
    "hist_out_next_mean",
    "hist_out_next_mean_7",
    "same_weekday_out_next",
    "yesterday_out_next",
    "sold_today",
    "expected_so_far",
    "sold_vs_expected",
    "expected_next",
    "mean_daily_7",
    "sold_vs_daily",
    "sales_h",
    "sales_h_1",
    "sales_h_2",
    "out_hours_today",
    "out_prev_hour",
    "discount",
    "activity",
    "hours_since_sale",
    "sold_before_out_mean",
    "sold_vs_sold_before_out",
    "left_vs_sold_before_out",
    "first_out_hour_mean",
    "hours_to_first_out_mean",
    "out_day_rate",
    "in_stock_day_demand",
    "sold_vs_in_stock_demand",
    "hours_to_first_out_yesterday",
    "sold_before_out_last",
    "left_vs_last",
    "left_vs_last_per_next",
    "max_daily_7",
    "left_vs_max_7",
    "left_vs_max_7_per_next",
    "left_vs_sold_before_out_per_next",
    "left_vs_in_stock_demand_per_next",
    "latent_daily_mean",
    "latent_left_per_next",
    "latent_next",
    "sold_before_out_min",
    "left_vs_min_per_next",
    "restocked_today",
    "store_out_now",
    "store_hist_out_next",
    "recent_vs_profile",
    "sold_vs_latent_daily",
    "in_stock_hours_since_sale",
    "hist_out_now",
    "hist_out_rest_of_day",
    "latent_share_left",
    "hours_to_first_out_min",
    "out_at_open",
    "out_close_yesterday",
    "hist_label_rate",
    "hist_label_rate_7",
    "hist_label_rate_near",
    "days_since_out",
    "out_streak_days",
    "sold_before_out_cv",
    "stock_cover_7",
    "left_vs_cover_7_per_next",
    "left_vs_cover_1_per_next",
    "yesterday_vs_daily_7",
    "sold_vs_yesterday_by_hour",
    "sold_minus_week_ago_by_hour",
)


def past_mean(a: np.ndarray, k: int, weight: np.ndarray | None = None) -> np.ndarray:
    """Mean of ``a`` over the ``k`` days before each day (axis 1), weighted by ``weight``
    (NaN where no weight); day ``d`` never sees itself."""
    w = np.ones(a.shape[:2]) if weight is None else weight
    w = w.reshape(w.shape + (1,) * (a.ndim - 2))
    c = np.concatenate([np.zeros_like(a[:, :1], np.float64), np.cumsum(a * w, 1, np.float64)], 1)
    cw = np.concatenate([np.zeros_like(w[:, :1], np.float64), np.cumsum(w, 1, np.float64)], 1)
    d = np.arange(a.shape[1])
    lo = np.maximum(d - k, 0)
    n = cw[:, d] - cw[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (c[:, d] - c[:, lo]) / n, np.nan)


def _past_extreme(a: np.ndarray, k: int, fn) -> np.ndarray:
    out = np.full(a.shape, np.nan)
    for d in range(1, a.shape[1]):
        with warnings.catch_warnings():  # an all-NaN window is NaN, as intended
            warnings.simplefilter("ignore", RuntimeWarning)
            out[:, d] = fn(a[:, max(0, d - k) : d], axis=1)
    return out


def _last_known(a: np.ndarray) -> np.ndarray:
    """The most recent non-NaN value of ``a`` on a day before each day (NaN if none)."""
    idx = np.where(np.isnan(a), -1, np.arange(a.shape[1])[None, :])
    idx = np.maximum.accumulate(idx, axis=1)
    prev = np.concatenate([np.full((a.shape[0], 1), -1), idx[:, :-1]], axis=1)
    vals = np.take_along_axis(a, np.maximum(prev, 0), axis=1)
    return np.where(prev >= 0, vals, np.nan)


def _shift_day(a: np.ndarray, k: int, fill: float) -> np.ndarray:
    out = np.full(a.shape, fill, dtype=np.float64)
    out[:, k:] = a[:, :-k]
    return out


def _days_since(flag: np.ndarray, cap: int) -> np.ndarray:
    """Days since the last day before each day with ``flag`` set (``cap`` when none or more)."""
    out = np.full(flag.shape, float(cap))
    last = np.full(len(flag), -cap - 1)
    for d in range(flag.shape[1]):
        out[:, d] = np.minimum(d - last, cap)
        last = np.where(flag[:, d] > 0, d, last)
    return out


def _streak(flag: np.ndarray, cap: int) -> np.ndarray:
    """Days in a row with ``flag`` set just before each day (at most ``cap``)."""
    out = np.zeros(flag.shape)
    run = np.zeros(len(flag))
    for d in range(flag.shape[1]):
        out[:, d] = np.minimum(run, cap)
        run = np.where(flag[:, d] > 0, run + 1, 0)
    return out


def _cover(sold_before: np.ndarray, trail: np.ndarray, out_day: np.ndarray, k: int) -> np.ndarray:
    """Mean over the ``k`` days before each day of the sell-out quantity per trailing daily
    sales (``trail``, known before that day): how many days' sales the retailer stocked."""
    cover = np.nan_to_num(sold_before) / (np.nan_to_num(trail) + _EPS)
    return past_mean(cover, k, out_day)


def _same_weekday_rate(outf: np.ndarray) -> np.ndarray:
    """Hourly stock-out rate on the same weekday of the past weeks in the history window."""
    flat = outf.reshape(len(outf), -1)
    weeks = [_shift_day(flat, 7 * 24 * w, np.nan) for w in range(1, HISTORY_DAYS // 7 + 1)]
    with warnings.catch_warnings():  # no past week yet is NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(weeks), axis=0).reshape(outf.shape)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, NaN elsewhere (no past day to learn from)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.nan_to_num(den) > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _store_mean(a: np.ndarray, store: np.ndarray | None) -> np.ndarray:
    """Mean of ``a`` ``[series, day]`` over the series of the same store."""
    if store is None:
        return a.mean(axis=0, keepdims=True).repeat(len(a), 0)
    ids, inv = np.unique(store, return_inverse=True)
    tot = np.zeros((len(ids), a.shape[1]))
    np.add.at(tot, inv, a)
    return (tot / np.bincount(inv)[:, None])[inv]


@dataclass
class DayContext:
    """Per series-day figures from finished days only (computed once, shared by every hour).

    >>> sales = np.ones((2, 16, 24)); out = np.zeros((2, 16, 24), np.uint8)
    >>> out[1, -2, 12:] = 1  # series 1's shelf was empty from noon yesterday
    >>> today = DayContext.of(sales, out).today()  # from the finished days before the last
    >>> today.first_out_yesterday.ravel().tolist(), today.sold_before_out_last.ravel().tolist()
    ([23.0, 12.0], [nan, 12.0])
    >>> today.days_since_out.ravel().tolist()
    [15.0, 1.0]
    """

    weekday: np.ndarray
    profile: np.ndarray
    out_rate: np.ndarray
    out_rate_7: np.ndarray
    out_same_weekday: np.ndarray
    out_yesterday: np.ndarray
    daily_7: np.ndarray
    max_daily_7: np.ndarray
    sold_before_out: np.ndarray
    sold_before_out_last: np.ndarray
    sold_before_out_min: np.ndarray
    first_out: np.ndarray
    first_out_yesterday: np.ndarray
    first_out_min: np.ndarray
    label_rate: np.ndarray
    label_rate_7: np.ndarray
    out_day_rate: np.ndarray
    in_stock_demand: np.ndarray
    latent_profile: np.ndarray
    latent_daily: np.ndarray
    days_since_out: np.ndarray
    out_streak: np.ndarray
    sold_before_out_cv: np.ndarray
    cover_7: np.ndarray
    cover_1: np.ndarray
    yesterday_daily: np.ndarray
    cum_yesterday: np.ndarray
    cum_week_ago: np.ndarray
    store: np.ndarray | None

    def today(self) -> DayContext:
        """The context of the last day only (what :func:`today_features` scores)."""
        cut = {k: (v if k == "store" else v[:, -1:]) for k, v in self.__dict__.items()}
        return DayContext(**cut)

    @classmethod
    def of(
        cls,
        sales: np.ndarray,
        out: np.ndarray,
        weekday: np.ndarray | None = None,
        latent: np.ndarray | None = None,
        store: np.ndarray | None = None,
    ) -> DayContext:
        """``latent``: the uncensored hourly demand (see :mod:`feature_store.latent_demand`),
        sales where not given; ``weekday`` per day (0 when not given)."""
        k = HISTORY_DAYS
        sales = np.asarray(sales, np.float64)
        outf = np.asarray(out, np.float64)
        latent = sales if latent is None else np.asarray(latent, np.float64)
        daily = sales.sum(2)
        trade = outf[:, :, 6:23]
        out_day = trade.max(2)
        first_out = np.where(out_day > 0, trade.argmax(2) + 6, 23).astype(np.float64)
        cum = np.cumsum(sales, 2)
        before = np.take_along_axis(cum, np.clip(first_out.astype(int) - 1, 0, 23)[..., None], 2)
        sold_before = np.where(out_day > 0, before[..., 0], np.nan)
        wd = np.zeros(sales.shape[1], int) if weekday is None else np.asarray(weekday)
        # The label's own history: on past days in stock at an hour, how often out in the next 4.
        pad = np.concatenate([outf, np.zeros_like(outf[:, :, :HORIZON_HOURS])], 2)
        ahead = np.max([pad[:, :, 1 + i : 25 + i] for i in range(HORIZON_HOURS)], axis=0)
        instock = 1.0 - outf
        hit = ahead * instock
        yesterday = _shift_day(daily, 1, 0.0)
        flat_cum = cum.reshape(len(cum), -1)
        with warnings.catch_warnings():  # no past sell-out has no spread: NaN, as intended
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = _past_extreme(sold_before, k, np.nanstd)
        return cls(
            weekday=np.broadcast_to(wd, daily.shape).astype(np.float64),
            profile=np.nan_to_num(past_mean(sales, k)),
            out_rate=np.nan_to_num(past_mean(outf, k)),
            out_rate_7=np.nan_to_num(past_mean(outf, 7)),
            out_same_weekday=_same_weekday_rate(outf),
            out_yesterday=_shift_day(outf.reshape(len(outf), -1), 24, 0.0).reshape(outf.shape),
            daily_7=np.nan_to_num(past_mean(daily, 7)),
            max_daily_7=np.nan_to_num(_past_extreme(daily, 7, np.max)),
            sold_before_out=past_mean(np.nan_to_num(sold_before), k, out_day),
            sold_before_out_last=_last_known(sold_before),
            sold_before_out_min=_past_extreme(sold_before, k, np.nanmin),
            first_out=np.nan_to_num(past_mean(first_out, k), nan=23.0),
            first_out_yesterday=_shift_day(first_out, 1, 23.0),
            first_out_min=np.nan_to_num(_past_extreme(first_out, k, np.min), nan=23.0),
            label_rate=_ratio(past_mean(hit, k), past_mean(instock, k)),
            label_rate_7=_ratio(past_mean(hit, 7), past_mean(instock, 7)),
            out_day_rate=np.nan_to_num(past_mean(out_day, k)),
            in_stock_demand=past_mean(daily, k, 1.0 - out_day),
            latent_profile=np.nan_to_num(past_mean(latent, k)),
            latent_daily=np.nan_to_num(past_mean(latent.sum(2), k)),
            days_since_out=_days_since(out_day, k + 1),
            out_streak=_streak(out_day, k),
            sold_before_out_cv=spread / (past_mean(np.nan_to_num(sold_before), k, out_day) + _EPS),
            # Stock covers count only past days whose own trailing days lie inside the window,
            # so a gateway's 15 days give what the whole history gives.
            cover_7=_cover(sold_before, past_mean(daily, 7), out_day, k - 7),
            cover_1=_cover(sold_before, yesterday, out_day, k - 1),
            yesterday_daily=yesterday,
            cum_yesterday=_shift_day(flat_cum, 24, 0.0).reshape(cum.shape),
            cum_week_ago=_shift_day(flat_cum, 7 * 24, 0.0).reshape(cum.shape),
            store=store,
        )


def hour_features(
    ctx: DayContext,
    sales: np.ndarray,
    out: np.ndarray,
    discount: np.ndarray,
    activity: np.ndarray,
    hour: int,
) -> np.ndarray:
    """Feature rows ``[series, day, len(FEATURES)]`` at complete hour ``hour`` (float32)."""
    h, nxt = hour, slice(hour + 1, hour + 1 + HORIZON_HOURS)
    s, d = sales.shape[:2]
    sales = np.asarray(sales, np.float64)
    outf = np.asarray(out, np.float64)
    cum = sales[:, :, : h + 1].sum(2)
    exp_so_far = ctx.profile[:, :, : h + 1].sum(2)
    exp_next = ctx.profile[:, :, nxt].sum(2)
    latent_next = ctx.latent_profile[:, :, nxt].sum(2)
    sbo = ctx.sold_before_out
    left_last = ctx.sold_before_out_last - cum
    left_max = ctx.max_daily_7 - cum
    left_sbo = sbo - cum
    left_demand = ctx.in_stock_demand - cum
    seen = sales[:, :, : h + 1][:, :, ::-1] > 0
    since_sale = np.where(seen.any(2), seen.argmax(2), h + 1)
    out_today = outf[:, :, 6:h].sum(2) if h > 6 else np.zeros((s, d))
    restocked = (outf[:, :, :h].max(2) > 0) & (outf[:, :, h] == 0)
    store_now = _store_mean(outf[:, :, h], ctx.store)
    store_hist = _store_mean(ctx.out_rate[:, :, nxt].mean(2), ctx.store)
    recent = slice(max(h - 2, 0), h + 1)
    recent_vs_profile = sales[:, :, recent].sum(2) / (
        ctx.latent_profile[:, :, recent].sum(2) + _EPS
    )
    # Hours since the last sale, counting only hours the shelf was stocked (a sale was possible).
    stocked = outf[:, :, : h + 1][:, :, ::-1] == 0
    sold = sales[:, :, : h + 1][:, :, ::-1] > 0
    before_sale = np.cumsum(sold, 2) == 0
    idle_stocked = (stocked & before_sale).sum(2)
    profile_day = ctx.latent_profile.sum(2)
    share_left = ctx.latent_profile[:, :, h + 1 : 22].sum(2) / (profile_day + _EPS)
    with warnings.catch_warnings():  # no past day in stock near the hour is NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        label_near = np.nanmean(ctx.label_rate[:, :, max(h - 1, 0) : h + 2], axis=2)

    def per_next(x, denom):
        return x / (denom + _EPS)

    cols = [
        np.full((s, d), h),
        ctx.weekday,
        ctx.out_rate[:, :, nxt].max(2),
        ctx.out_rate[:, :, nxt].mean(2),
        ctx.out_rate_7[:, :, nxt].mean(2),
        ctx.out_same_weekday[:, :, nxt].max(2),
        ctx.out_yesterday[:, :, nxt].max(2),
        cum,
        exp_so_far,
        cum / (exp_so_far + _EPS),
        exp_next,
        ctx.daily_7,
        cum / (ctx.daily_7 + _EPS),
        sales[:, :, h],
        sales[:, :, h - 1],
        sales[:, :, h - 2],
        out_today,
        outf[:, :, h - 1],
        discount,
        activity,
        since_sale,
        sbo,
        cum / (sbo + _EPS),
        left_sbo,
        ctx.first_out,
        ctx.first_out - h,
        ctx.out_day_rate,
        ctx.in_stock_demand,
        cum / (ctx.in_stock_demand + _EPS),
        ctx.first_out_yesterday - h,
        ctx.sold_before_out_last,
        left_last,
        per_next(left_last, exp_next),
        ctx.max_daily_7,
        left_max,
        per_next(left_max, exp_next),
        per_next(left_sbo, exp_next),
        per_next(left_demand, exp_next),
        ctx.latent_daily,
        per_next(ctx.latent_daily - cum, latent_next),
        latent_next,
        ctx.sold_before_out_min,
        per_next(ctx.sold_before_out_min - cum, latent_next),
        restocked,
        store_now,
        store_hist,
        recent_vs_profile,
        cum / (ctx.latent_daily + _EPS),
        idle_stocked,
        ctx.out_rate[:, :, h],
        ctx.out_rate[:, :, h + 1 : 22].mean(2),
        share_left,
        ctx.first_out_min - h,
        outf[:, :, 6],
        ctx.out_yesterday[:, :, 21],
        ctx.label_rate[:, :, h],
        ctx.label_rate_7[:, :, h],
        label_near,
        ctx.days_since_out,
        ctx.out_streak,
        ctx.sold_before_out_cv,
        ctx.cover_7,
        per_next(ctx.cover_7 * ctx.daily_7 - cum, latent_next),
        per_next(ctx.cover_1 * ctx.yesterday_daily - cum, latent_next),
        ctx.yesterday_daily / (ctx.daily_7 + _EPS),
        cum / (ctx.cum_yesterday[:, :, h] + _EPS),
        cum - ctx.cum_week_ago[:, :, h],
    ]
    return np.stack([np.asarray(c, np.float64) for c in cols], axis=2).astype(np.float32)


def price_ratio(price: np.ndarray) -> np.ndarray:
    """Each window day's price ``[series, day]`` as a ratio to the window's list price (its
    highest); a day without a known price carries the day before's, 1.0 when none is known.
    Training passes the data's price ratios, a gateway the unit prices its tills reported.

    >>> price_ratio(np.array([[2.0, np.nan, 1.0]])).tolist()
    [[1.0, 1.0, 0.5]]
    """
    p = np.array(price, np.float64)
    for d in range(1, p.shape[1]):
        p[:, d] = np.where(np.isnan(p[:, d]), p[:, d - 1], p[:, d])
    top = np.max(np.where(np.isnan(p), -np.inf, p), axis=1, keepdims=True)
    ok = np.isfinite(top) & (top > 0)
    ratio = p / np.where(ok, top, 1.0)
    return np.where(ok & ~np.isnan(ratio), ratio, 1.0)


def window_latent(
    sales: np.ndarray, out: np.ndarray, weekday: np.ndarray, store: np.ndarray | None = None
) -> np.ndarray:
    """Uncensored hourly demand of every day of a window whose last day is today
    (:mod:`feature_store.latent_demand`): the intraday profile is learnt on the window's finished
    days only, each SKU's own shrunk towards its store's pooled profile (the SKUs a gateway
    holds), so today's hours never shape the past and a gateway needs nothing but its window."""
    n, days = sales.shape[:2]
    finished = np.arange(days) < days - 1
    group = np.zeros(n, np.int64) if store is None else np.asarray(store)
    wd = np.asarray(weekday, np.int64)
    shares = hourly_shares(sales, out, wd, np.arange(n), group, finished)
    return recover(sales, out, shares, wd, finished).demand


def today_features(
    sales: np.ndarray,
    out: np.ndarray,
    discount: np.ndarray,
    activity: np.ndarray,
    weekday: np.ndarray,
    hours,
    store: np.ndarray | None = None,
) -> np.ndarray:
    """Feature rows ``[len(hours), series, len(FEATURES)]`` of the window's last day at each
    complete hour of ``hours``: the one computation a gateway runs on its
    ``[SKUs, WINDOW_DAYS, 24]`` window and training runs on every day of the history.
    ``discount`` (a price, NaN where none is known: see :func:`price_ratio`), ``activity`` and
    ``weekday`` are per window day; ``store`` per series (None: one store)."""
    sales = np.asarray(sales, np.float64)
    latent = window_latent(sales, out, weekday, store)
    ctx = DayContext.of(sales, out, weekday, latent, store).today()
    s, o = sales[:, -1:], np.asarray(out)[:, -1:]
    # Today's price and activity are known from the tills: once a sale by the hour showed them.
    price = np.array(discount, np.float64)
    shown, unseen = price_ratio(price)[:, -1:], price.copy()
    unseen[:, -1] = np.nan
    before = price_ratio(unseen)[:, -1:]
    act = np.asarray(activity, np.float64)[:, -1:]
    rows = []
    for h in hours:
        sold = s[:, :, : h + 1].max(2) > 0
        d, a = np.where(sold, shown, before), np.where(sold, act, 0.0)
        rows.append(hour_features(ctx, s, o, d, a, h)[:, 0])
    return np.stack(rows)


def label_4h(out: np.ndarray, hour: int) -> np.ndarray:
    """1 where the shelf is out in any of the next ``HORIZON_HOURS`` hours after ``hour``."""
    return np.asarray(out)[:, :, hour + 1 : hour + 1 + HORIZON_HOURS].max(2).astype(np.int8)


def first_out_in(out: np.ndarray, hour: int) -> np.ndarray:
    """Hours from ``hour`` to the first out-of-stock hour among the next ``HORIZON_HOURS``
    (0 where none): the lead time a warning at ``hour`` gave."""
    nxt = np.asarray(out)[:, :, hour + 1 : hour + 1 + HORIZON_HOURS] > 0
    return np.where(nxt.any(2), nxt.argmax(2) + 1, 0)
