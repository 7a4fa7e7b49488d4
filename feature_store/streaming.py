"""Streaming side of the feature store: the features of :mod:`feature_store.spec` for one
store-SKU, updated one closed step (day or week) at a time, with O(``HISTORY_STEPS``) state per
series (a year and a month of steps, for the year-back features).

Values equal the batch side's (:mod:`feature_store.batch`) for the same days; a test checks it.
numpy only, so the gateway can use it.

>>> s = SeriesState()
>>> for u in [1.0, 0.0, 3.0]:
...     s.close_day(u)
>>> round(float(s.close_features()[close_names().index("mean_7")]), 6)
1.333333
>>> s.feature_row(horizon=1, target_day=np.datetime64("2024-01-04")).shape == (len(names()),)
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain, islice
from typing import NamedTuple

import numpy as np

from feature_store.spec import (
    DAYS_SINCE_CAP,
    DTYPE,
    EWM_ALPHAS,
    HISTORY_STEPS,
    LAGS,
    MAX_HORIZON,
    MAX_WINDOW,
    PRICE_WINDOW,
    SAME_DOW_WEEKS,
    WINDOWS,
    YEAR_RATIO_CAP,
    Grain,
    close_names,
    ewm_name,
    ewm_weights,
    grain,
    names,
    weekday,
)

_CLOSE = close_names()
_N_CLOSE = len(_CLOSE)
# Column j of a window matrix is day ``close - (MAX_WINDOW - 1 - j)``: weights in that order,
# and the normalising total for a series of each length.
_EWM_WEIGHTS_BY_COLUMN = {a: np.array(ewm_weights(a))[::-1].copy() for a in EWM_ALPHAS}
_EWM_TOTALS = {a: np.cumsum(ewm_weights(a)) for a in EWM_ALPHAS}


class SeriesState:
    """The last ``HISTORY_STEPS`` steps of one store-SKU and what the features need beyond them.

    Call :meth:`close_day` once per day in order, from the series' first day (a day without
    sales is a 0). ``price``/``promo`` of a day are optional (None = unknown; the last known price
    is carried forward as in batch).

    >>> s = SeriesState()
    >>> s.close_day(2.0, price=1.5)
    >>> s.days_seen
    1
    """

    __slots__ = (
        "_last_dow",
        "days_seen",
        "last_price",
        "last_promo",
        "last_sale_age",
        "prices",
        "units",
    )

    def __init__(self) -> None:
        self.units: deque[float] = deque(maxlen=HISTORY_STEPS)
        self.prices: deque[float] = deque(maxlen=PRICE_WINDOW)  # NaN: no price that step
        self.days_seen = 0
        self.last_price = float("nan")
        self.last_promo = 0.0
        self.last_sale_age = -1  # days_seen index of the last sale, -1 when none
        self._last_dow: int | None = None

    def close_day(
        self, units: float, price: float | None = None, promo: float | None = None
    ) -> None:
        """Add a closed day's units (and its price/promo when known)."""
        u = float(units)
        self.units.append(u)
        if u > 0:
            self.last_sale_age = self.days_seen
        self.days_seen += 1
        known = price is not None and not np.isnan(price)
        if known:
            self.last_price = float(price)
        self.prices.append(float(price) if known else float("nan"))
        self.last_promo = 0.0 if promo is None or np.isnan(promo) else float(promo)

    def close_features(self) -> np.ndarray:
        """Close-day features (float64, in ``close_names()`` order) as of the last closed day."""
        return close_feature_matrix([self])[0]

    def same_dow_mean(self, horizon: int) -> float:
        """Mean units on the last ``SAME_DOW_WEEKS`` days with the target's weekday."""
        return float(_same_dow_means(_window_matrix([self]), (int(horizon),))[0, 0])

    def feature_row(
        self, horizon: int, target_day: np.datetime64, event: float = 0.0
    ) -> np.ndarray:
        """One demand-model input row (float32, spec order) for ``target_day = close + horizon``
        (day grain)."""
        return self.feature_rows(target_day - np.timedelta64(horizon, "D"), [horizon], [event])[0]

    def feature_rows(
        self,
        close_day: np.datetime64,
        horizons=None,
        events=None,
        grain_name: str = "day",
        promos=None,
        prices=None,
    ) -> np.ndarray:
        """Rows for several horizons from the close step ``close_day`` (the last closed one);
        ``promos``/``prices``: the planned values per horizon (see :func:`feature_matrix`)."""
        planned = [None if v is None else [v] for v in (promos, prices)]
        return feature_matrix([self], close_day, horizons, events, grain_name, *planned)


def _window_matrix(
    states: Sequence[SeriesState], width: int = HISTORY_STEPS
) -> tuple[np.ndarray, np.ndarray]:
    """The series' last ``width`` steps as one (n, width) matrix, right-aligned (the newest step
    in the last column) and zero-padded on the left, and how many steps of each it holds."""
    n = len(states)
    lens = np.fromiter((min(len(s.units), width) for s in states), dtype=np.int64, count=n)
    out = np.zeros((n, width))
    if width >= HISTORY_STEPS:
        total = int(lens.sum())
        flat = np.fromiter(chain.from_iterable(s.units for s in states), np.float64, count=total)
    else:  # only the newest ``width`` steps of each
        flat = np.fromiter(
            chain.from_iterable(
                islice(s.units, len(s.units) - k, None) for s, k in zip(states, lens, strict=True)
            ),
            np.float64,
            count=int(lens.sum()),
        )
        total = len(flat)
    rows = np.repeat(np.arange(n), lens)
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    out[rows, width - np.repeat(lens, lens) + np.arange(total) - starts] = flat
    return out, lens


def close_feature_matrix(states: Sequence[SeriesState]) -> np.ndarray:
    """Close-day features of many series at once (n, ``close_names()``), float64.

    Why one matrix: a gateway's day close needs them for every SKU of the store, and a Python
    pass per SKU cost ~0.1 ms each (0.3-0.45 s at 3,000 SKUs, with the ledger lock held).

    >>> a, b = SeriesState(), SeriesState()
    >>> for u in [1.0, 0.0, 3.0]:
    ...     a.close_day(u)
    >>> b.close_day(5.0)
    >>> m = close_feature_matrix([a, b])
    >>> [round(float(v), 6) for v in m[:, close_names().index("mean_7")]]
    [1.333333, 5.0]
    """
    return window_close_features(_window_matrix(states, MAX_WINDOW), SeriesScalars.of(states))


class SeriesScalars(NamedTuple):
    """What the features need of many series beyond their units, one array entry per series
    (``SeriesState``'s fields side by side; ``price_seen``: the last ``PRICE_WINDOW`` steps'
    prices, NaN where unknown or before the series, in any column order).

    >>> sold = SeriesState()
    >>> sold.close_day(2.0, price=1.5)
    >>> scalars = SeriesScalars.of([sold, SeriesState()])
    >>> scalars.days_seen.tolist(), scalars.last_price.tolist(), scalars.price_seen.shape
    ([1, 0], [1.5, nan], (2, 28))
    """

    days_seen: np.ndarray
    last_sale_age: np.ndarray
    last_price: np.ndarray
    last_promo: np.ndarray
    price_seen: np.ndarray

    @classmethod
    def of(cls, states: Sequence[SeriesState]) -> SeriesScalars:
        n = len(states)
        lens = np.fromiter((len(s.prices) for s in states), dtype=np.int64, count=n)
        flat = np.fromiter(
            chain.from_iterable(s.prices for s in states), np.float64, int(lens.sum())
        )
        seen = np.full((n, PRICE_WINDOW), np.nan)
        seen[
            np.repeat(np.arange(n), lens),
            np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens),
        ] = flat
        return cls(
            np.fromiter((s.days_seen for s in states), dtype=np.int64, count=n),
            np.fromiter((s.last_sale_age for s in states), dtype=np.int64, count=n),
            np.fromiter((s.last_price for s in states), dtype=np.float64, count=n),
            np.fromiter((s.last_promo for s in states), dtype=np.float64, count=n),
            seen,
        )


def window_close_features(
    window: tuple[np.ndarray, np.ndarray], scalars: SeriesScalars
) -> np.ndarray:
    """:func:`close_feature_matrix` from the series' window matrix (right-aligned, zero-padded,
    at least ``MAX_WINDOW`` steps wide, with each series' length) and their scalars: the one
    definition every holder of series (``SeriesState`` lists, ``SeriesPanel``) computes with."""
    U, lens = window[0][:, -MAX_WINDOW:], np.minimum(window[1], MAX_WINDOW)
    if (lens == 0).any():
        raise ValueError("no day closed yet: close_day() at least once before asking for features")
    n = len(lens)
    out = np.empty((n, _N_CLOSE))
    col = _CLOSE.index
    for k in LAGS:
        out[:, col(f"lag_{k}")] = U[:, MAX_WINDOW - k]  # zero padding: 0 before the series
    for w in WINDOWS:
        win = U[:, -w:]
        m = np.minimum(lens, w).astype(np.float64)
        mean = win.sum(axis=1) / m
        zeros = m - np.count_nonzero(win, axis=1)
        out[:, col(f"mean_{w}")] = mean
        out[:, col(f"std_{w}")] = np.sqrt(np.maximum((win * win).sum(axis=1) / m - mean * mean, 0))
        out[:, col(f"zero_share_{w}")] = zeros / m
        out[:, col(f"sale_interval_{w}")] = m / np.maximum(m - zeros, 1.0)
    sold = (U > 0).astype(np.float64)
    for a, weights in _EWM_WEIGHTS_BY_COLUMN.items():
        total = _EWM_TOTALS[a][lens - 1]
        out[:, col(ewm_name(a))] = (U @ weights) / total
        out[:, col(ewm_name(a, "ewm_sale_share"))] = (sold @ weights) / total
    seen, last = scalars.days_seen, scalars.last_sale_age
    since = np.where(last >= 0, np.minimum(seen - 1 - last, DAYS_SINCE_CAP), DAYS_SINCE_CAP)
    out[:, col("days_since_sale")] = since
    out[:, col("z_last")] = (U[:, -1] - out[:, col("mean_28")]) / (out[:, col("std_28")] + 1.0)
    out[:, col("age")] = np.minimum(seen, MAX_WINDOW)
    price = scalars.last_price
    out[:, col("price")] = np.where(np.isnan(price), 0.0, price)
    out[:, col("promo")] = scalars.last_promo
    return out


def _same_dow_means(
    window: tuple[np.ndarray, np.ndarray], hs: tuple[int, ...], season: int = 7
) -> np.ndarray:
    """(n, len(hs)): mean units on the last ``SAME_DOW_WEEKS`` steps with each target's weekday
    (``season`` steps apart; 0 when the series has none yet)."""
    U, lens = window
    width = U.shape[1]
    out = np.zeros((U.shape[0], len(hs)))
    for i, h in enumerate(hs):
        offsets = (-h) % season + season * np.arange(SAME_DOW_WEEKS)
        cols = width - 1 - offsets
        valid = offsets[None, :] < lens[:, None]
        count = valid.sum(axis=1)
        out[:, i] = np.where(count > 0, (U[:, cols] * valid).sum(axis=1) / np.maximum(count, 1), 0)
    return out


def _back_mean(window: tuple[np.ndarray, np.ndarray], lo: int, hi: int):
    """Mean of the seen units ``lo..hi`` steps before the close (0 = the close step), and how
    many seen steps it averages."""
    U, lens = window
    width = U.shape[1]
    ks = np.arange(max(lo, 0), hi + 1)
    seen = ks[None, :] < lens[:, None]
    count = seen.sum(axis=1)
    total = (U[:, width - 1 - ks] * seen).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0), count


def _year_features(window, hs: tuple[int, ...], g: Grain) -> np.ndarray:
    """(n, len(hs), 3): ``year_lag``, ``year_mean``, ``year_ratio`` (spec) per horizon."""
    n = window[0].shape[0]
    out = np.empty((n, len(hs), 3))
    base, seen = _back_mean(window, g.year, g.year + g.year_base - 1)
    half = g.year_span // 2
    for i, h in enumerate(hs):
        k = g.year - h  # steps back from the close to the target's step a year earlier
        out[:, i, 0] = _back_mean(window, k, k)[0]
        mean = _back_mean(window, k - half, k + half)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(base > 0, mean / base, np.where(mean > 0, np.inf, 1.0))
        out[:, i, 1] = mean
        out[:, i, 2] = np.where(seen > 0, np.minimum(ratio, YEAR_RATIO_CAP), -1.0)
    return out


def _price_ratios(scalars: SeriesScalars, n_h: int, prices) -> np.ndarray:
    """(n, n_h) ``target_price_ratio``: the planned price (the last known one when not given)
    over the highest price seen in the last ``PRICE_WINDOW`` steps; 1 without either."""
    n = len(scalars.last_price)
    ref = np.fmax.reduce(scalars.price_seen, axis=1)  # NaN only when no price was seen
    last = scalars.last_price
    price = np.repeat(last[:, None], n_h, axis=1)
    if prices is not None:
        planned = np.asarray(prices, dtype=np.float64).reshape(n, n_h)
        price = np.where(np.isnan(planned), price, planned)
    ok = ~np.isnan(price) & (ref[:, None] > 0)
    return np.where(ok, price / np.where(ref > 0, ref, 1.0)[:, None], 1.0)


def feature_matrix(
    states: Sequence[SeriesState],
    close_day: np.datetime64,
    horizons=None,
    events=None,
    grain_name: str = "day",
    promos=None,
    prices=None,
) -> np.ndarray:
    """Demand-model input rows (float32, spec order) of many series for several horizons from
    the close step ``close_day`` (its first day): series-major, ``len(horizons)`` rows per
    series, horizons in steps of ``grain_name``. ``events``: the calendar-event flag per horizon
    (default 0). ``promos``/``prices``: planned promotion flags and prices, ``(n, horizons)``
    (NaN where not planned); without them no promotion and the last known price."""
    window = _window_matrix(states)
    scalars = SeriesScalars.of(states)
    return window_feature_matrix(
        window, scalars, close_day, horizons, events, grain_name, promos, prices
    )


def window_feature_matrix(
    window: tuple[np.ndarray, np.ndarray],
    scalars: SeriesScalars,
    close_day: np.datetime64,
    horizons=None,
    events=None,
    grain_name: str = "day",
    promos=None,
    prices=None,
    close: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`feature_matrix` from the series' window matrix (``HISTORY_STEPS`` wide) and
    scalars (see :func:`window_close_features`); ``close``: their close features when the
    caller has them already."""
    hs = tuple(range(1, MAX_HORIZON + 1)) if horizons is None else tuple(int(h) for h in horizons)
    if any(h < 1 or h > MAX_HORIZON for h in hs):
        raise ValueError(f"horizon must be in 1..{MAX_HORIZON}, got {list(hs)}")
    g = grain(grain_name)
    if close is None:
        close = window_close_features(window, scalars)
    n, H = len(close), len(hs)
    X = np.empty((n * H, len(names())), dtype=DTYPE)
    rows = X.reshape(n, H, X.shape[1])  # a view: each series' rows, one per horizon
    rows[:, :, :_N_CLOSE] = close[:, None, :]  # broadcast, not repeated into a copy first
    day0 = int(np.datetime64(close_day, "D").astype(np.int64))
    rows[:, :, _N_CLOSE : _N_CLOSE + 4] = _calendar(day0, hs, g.days)
    X[:, _N_CLOSE + 4] = 0.0 if events is None else np.tile([float(e) for e in events], n)
    X[:, _N_CLOSE + 5] = _same_dow_means(window, hs, g.season).reshape(-1)
    X[:, _N_CLOSE + 6 : _N_CLOSE + 9] = _year_features(window, hs, g).reshape(n * H, 3)
    promo = 0.0 if promos is None else np.nan_to_num(np.asarray(promos, np.float64), nan=0.0)
    X[:, _N_CLOSE + 9] = np.broadcast_to(promo, (n, H)).reshape(-1)
    X[:, _N_CLOSE + 10] = _price_ratios(scalars, H, prices).reshape(-1)
    return X


@lru_cache(maxsize=64)
def _calendar(day0: int, hs: tuple[int, ...], step_days: int = 1) -> np.ndarray:
    """Horizon, weekday, day of month and month of each target step: the same for every SKU
    at a close, so a gateway's day close computes them once, not once per SKU."""
    out = np.empty((len(hs), 4), dtype=np.float64)
    for i, h in enumerate(hs):
        target = np.datetime64(day0 + h * step_days, "D")
        month = target.astype("datetime64[M]")
        out[i] = (
            h,
            weekday(day0 + h * step_days),
            int((target - month.astype("datetime64[D]")).astype(np.int64)) + 1,
            int(month.astype(np.int64)) % 12 + 1,
        )
    return out
