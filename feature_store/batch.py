"""Batch side of the feature store: every feature of :mod:`feature_store.spec` for a whole history.

The history is held as a dense daily :class:`Panel` (series x days) so each window statistic is
one vectorised cumulative-sum difference over the time axis, not a per-row pandas groupby.

>>> import numpy as np
>>> units = np.array([[np.nan, 1.0, 0.0, 3.0]])
>>> p = Panel(keys=[("S1", "A")], start=np.datetime64("2024-01-01"), units=units)
>>> close = close_features(p)
>>> float(close[0, 3, close_index("mean_7")])  # (1 + 0 + 3) / 3 days seen
1.3333333333333333
>>> X = feature_rows(p, close, np.array([0]), np.array([3]), np.array([1]))
>>> X.shape == (1, len(names()))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from feature_store.censored_demand import uncensor
from feature_store.spec import (
    DAYS_SINCE_CAP,
    DTYPE,
    EWM_ALPHAS,
    LAGS,
    MAX_HORIZON,
    MAX_WINDOW,
    SAME_DOW_WEEKS,
    WINDOWS,
    close_names,
    ewm_name,
    ewm_weights,
    names,
    weekday,
)

_CLOSE = close_names()
_CLOSE_INDEX = {n: i for i, n in enumerate(_CLOSE)}


def close_index(name: str) -> int:
    """Column of a close-day feature in the array :func:`close_features` returns."""
    return _CLOSE_INDEX[name]


@dataclass
class Panel:
    """Daily history of many store-SKU series on one calendar.

    ``units[s, t]`` is NaN before series ``s`` began and a number (0 for no sales) from then on;
    ``price``/``promo`` are NaN where unknown; ``event[t]`` is 1 on calendar-event days.

    >>> import numpy as np
    >>> p = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=np.zeros((1, 3)))
    >>> str(p.dates[-1])
    '2024-01-03'
    """

    keys: list[tuple[str, str]]
    start: np.datetime64
    units: np.ndarray
    price: np.ndarray | None = None
    promo: np.ndarray | None = None
    event: np.ndarray | None = None
    # Events known beyond the history (a calendar lookahead), as day offsets from ``start``.
    future_events: set[int] = field(default_factory=set)

    @property
    def n_days(self) -> int:
        return int(self.units.shape[1])

    @property
    def dates(self) -> np.ndarray:
        return np.datetime64(self.start, "D") + np.arange(self.n_days)

    def first_day(self) -> np.ndarray:
        """Index of each series' first day (``n_days`` for a series with no days)."""
        valid = ~np.isnan(self.units)
        first = np.argmax(valid, axis=1)
        first[~valid.any(axis=1)] = self.n_days
        return first


def _window_sum(cum: np.ndarray, w: int) -> np.ndarray:
    """Sum over the last ``w`` days ending at each day, from a cumsum with a leading 0 column."""
    t = cum.shape[1] - 1
    lo = np.maximum(np.arange(1, t + 1) - w, 0)
    return cum[:, 1:] - cum[:, lo]


def _cum(a: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], a.shape[1] + 1), dtype=np.float64)
    np.cumsum(a, axis=1, out=out[:, 1:])
    return out


def _ffill(a: np.ndarray) -> np.ndarray:
    """Carry the last known value forward along days (NaN until the first known value)."""
    idx = np.where(np.isnan(a), 0, np.arange(a.shape[1])[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = a[np.arange(a.shape[0])[:, None], idx]
    return out


def _ewm_features(out: np.ndarray, u0: np.ndarray, valid: np.ndarray) -> None:
    """Exponentially weighted means over the last ``MAX_WINDOW`` days (spec ``ewm_*``), one
    shifted copy of the panel per lag, shared by every alpha."""
    n_days = u0.shape[1]
    sale = (u0 > 0).astype(np.float64)
    weights = {a: ewm_weights(a) for a in EWM_ALPHAS}
    sums = {a: np.zeros((3, *u0.shape)) for a in EWM_ALPHAS}  # units, sale days, weight
    for k in range(min(MAX_WINDOW, n_days)):
        lagged = np.zeros((3, *u0.shape))
        lagged[0, :, k:] = u0[:, : n_days - k]
        lagged[1, :, k:] = sale[:, : n_days - k]
        lagged[2, :, k:] = valid[:, : n_days - k]
        for a in EWM_ALPHAS:
            sums[a] += weights[a][k] * lagged
    for a in EWM_ALPHAS:
        units, sales, weight = sums[a]
        seen = weight > 0
        safe = np.where(seen, weight, 1.0)
        out[:, :, _CLOSE_INDEX[ewm_name(a)]] = np.where(seen, units / safe, 0.0)
        out[:, :, _CLOSE_INDEX[ewm_name(a, "ewm_sale_share")]] = np.where(seen, sales / safe, 0.0)


def close_features(panel: Panel) -> np.ndarray:
    """All close-day features for every series and day: float64 ``[series, day, feature]``."""
    u = panel.units.astype(np.float64)
    valid = ~np.isnan(u)
    u0 = np.where(valid, u, 0.0)
    n_series, n_days = u.shape
    out = np.zeros((n_series, n_days, len(_CLOSE)), dtype=np.float64)

    for k in LAGS:
        shifted = np.zeros_like(u0)
        if k - 1 < n_days:
            shifted[:, k - 1 :] = u0[:, : n_days - k + 1]
        out[:, :, _CLOSE_INDEX[f"lag_{k}"]] = shifted

    c_sum, c_sq = _cum(u0), _cum(u0 * u0)
    c_n, c_zero = _cum(valid.astype(np.float64)), _cum((valid & (u0 == 0)).astype(np.float64))
    for w in WINDOWS:
        n = _window_sum(c_n, w)
        safe = np.maximum(n, 1.0)
        mean = _window_sum(c_sum, w) / safe
        var = np.maximum(_window_sum(c_sq, w) / safe - mean * mean, 0.0)
        zeros = _window_sum(c_zero, w)
        out[:, :, _CLOSE_INDEX[f"mean_{w}"]] = mean
        out[:, :, _CLOSE_INDEX[f"std_{w}"]] = np.sqrt(var)
        out[:, :, _CLOSE_INDEX[f"zero_share_{w}"]] = np.where(n > 0, zeros / safe, 0.0)
        out[:, :, _CLOSE_INDEX[f"sale_interval_{w}"]] = n / np.maximum(n - zeros, 1.0)

    _ewm_features(out, u0, valid)

    day = np.arange(n_days)[None, :]
    last_sale = np.maximum.accumulate(np.where(u0 > 0, day, -1), axis=1)
    since = np.where(last_sale >= 0, day - last_sale, DAYS_SINCE_CAP)
    out[:, :, _CLOSE_INDEX["days_since_sale"]] = np.minimum(since, DAYS_SINCE_CAP)

    mean28, std28 = out[:, :, _CLOSE_INDEX["mean_28"]], out[:, :, _CLOSE_INDEX["std_28"]]
    out[:, :, _CLOSE_INDEX["z_last"]] = (u0 - mean28) / (std28 + 1.0)
    out[:, :, _CLOSE_INDEX["age"]] = np.minimum(c_n[:, 1:], MAX_WINDOW)
    if panel.price is not None:
        # A price seen before the series began is not the series' price (streaming never sees it).
        price = np.where(valid, panel.price, np.nan)
        out[:, :, _CLOSE_INDEX["price"]] = np.nan_to_num(_ffill(price), nan=0.0)
    if panel.promo is not None:
        out[:, :, _CLOSE_INDEX["promo"]] = np.nan_to_num(panel.promo, nan=0.0)
    return out


def _target_event(panel: Panel, target: np.ndarray) -> np.ndarray:
    ev = np.zeros(len(target), dtype=np.float64)
    if panel.event is not None:
        inside = target < panel.n_days
        ev[inside] = panel.event[target[inside]]
    if panel.future_events:
        future = np.fromiter(panel.future_events, dtype=np.int64)
        ev[np.isin(target, future)] = 1.0
    return ev


def _same_dow_mean(panel: Panel, series: np.ndarray, close: np.ndarray, h: np.ndarray):
    u = panel.units
    offset = (-h) % 7  # days back from the close day to the target's weekday
    total = np.zeros(len(series), dtype=np.float64)
    count = np.zeros(len(series), dtype=np.float64)
    for j in range(SAME_DOW_WEEKS):
        day = close - offset - 7 * j
        ok = day >= 0
        vals = np.full(len(series), np.nan)
        vals[ok] = u[series[ok], day[ok]]
        seen = ~np.isnan(vals)
        total += np.where(seen, vals, 0.0)
        count += seen
    return np.where(count > 0, total / np.maximum(count, 1.0), 0.0)


def feature_rows(
    panel: Panel,
    close: np.ndarray,
    series: np.ndarray,
    day: np.ndarray,
    horizon: np.ndarray,
) -> np.ndarray:
    """The demand model's input matrix (float32, columns in spec order) for rows of
    (series index, close-day index, horizon)."""
    series, day, horizon = (np.asarray(a, dtype=np.int64) for a in (series, day, horizon))
    if len(horizon) and (horizon.min() < 1 or horizon.max() > MAX_HORIZON):
        raise ValueError(
            f"horizon must be in 1..{MAX_HORIZON}, got {horizon.min()}..{horizon.max()}"
        )
    target = day + horizon
    dates = np.datetime64(panel.start, "D") + target
    dow = weekday(dates.astype("datetime64[D]").astype(np.int64))
    months = dates.astype("datetime64[M]")
    dom = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    month = months.astype(np.int64) % 12 + 1
    target_cols = {
        "horizon": horizon,
        "target_dow": dow,
        "target_dom": dom,
        "target_month": month,
        "target_event": _target_event(panel, target),
        "same_dow_mean": _same_dow_mean(panel, series, day, horizon),
    }
    n_close = len(_CLOSE)
    X = np.empty((len(series), len(names())), dtype=DTYPE)
    X[:, :n_close] = close[series, day]
    for i, name in enumerate(names()[n_close:], start=n_close):
        X[:, i] = target_cols[name]
    return X


def forecast_rows(
    panel: Panel, close: np.ndarray, day: int, horizons: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows for forecasting every started series from close day ``day``: returns
    ``(X, series_index, horizon)`` with series-major order."""
    hs = np.arange(1, MAX_HORIZON + 1) if horizons is None else np.asarray(horizons)
    started = np.flatnonzero(panel.first_day() <= day)
    series = np.repeat(started, len(hs))
    horizon = np.tile(hs, len(started))
    days = np.full(len(series), day)
    return feature_rows(panel, close, series, days, horizon), series, horizon


def training_index(
    panel: Panel, last_day: int, stride: int = 7, min_age: int = 7, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(series, close day, horizon)`` of the training rows: close days every ``stride`` days
    (random phase per series), every horizon whose target day is on or before ``last_day``.

    >>> p = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=np.zeros((1, 40)))
    >>> s, d, h = training_index(p, last_day=39)
    >>> bool((d + h <= 39).all()), bool((d >= 6).all())
    (True, True)
    """
    rng = np.random.default_rng(seed)
    first = panel.first_day()
    s_list, d_list, h_list = [], [], []
    hs = np.arange(1, MAX_HORIZON + 1)
    for s in range(len(panel.keys)):
        lo = first[s] + min_age - 1
        days = np.arange(lo + int(rng.integers(stride)), last_day, stride)
        if not len(days):
            continue
        d = np.repeat(days, len(hs))
        h = np.tile(hs, len(days))
        keep = d + h <= last_day
        s_list.append(np.full(int(keep.sum()), s))
        d_list.append(d[keep])
        h_list.append(h[keep])
    if not s_list:
        raise ValueError(
            f"no training rows: every series is younger than {min_age} days before day {last_day}"
        )
    series, day, horizon = (np.concatenate(a) for a in (s_list, d_list, h_list))
    return series, day, horizon


def training_rows(
    panel: Panel,
    close: np.ndarray,
    last_day: int,
    stride: int = 7,
    min_age: int = 7,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Training matrix and labels for the rows of :func:`training_index`."""
    series, day, horizon = training_index(panel, last_day, stride, min_age, seed)
    X = feature_rows(panel, close, series, day, horizon)
    y = np.nan_to_num(panel.units[series, day + horizon], nan=0.0)
    return X, y


def anomaly_rows(panel: Panel, close: np.ndarray, series: np.ndarray, day: np.ndarray):
    """The anomaly model's input matrix (float32) for store-SKU-days."""
    from feature_store.spec import ANOMALY_FEATURES

    cols = [_CLOSE_INDEX[n] for n in ANOMALY_FEATURES]
    return close[np.asarray(series), np.asarray(day)][:, cols].astype(DTYPE)


def panel_from_frame(frame, calendar_events: Sequence[str] | None = None) -> Panel:
    """Dense daily panel from a canonical long frame (``store_id, sku, date, units`` and
    optional ``price, promo, event, stockout``). Days without a row after a series' first row
    are 0 units; a ``stockout`` day's units are its estimated demand (``uncensor``).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"store_id": ["S", "S"], "sku": ["A", "A"],
    ...                    "date": pd.to_datetime(["2024-01-01", "2024-01-03"]), "units": [2, 5]})
    >>> panel_from_frame(df).units.tolist()
    [[2.0, 0.0, 5.0]]
    """
    import pandas as pd

    dates = pd.to_datetime(frame["date"]).dt.normalize().to_numpy().astype("datetime64[D]")
    start = dates.min()
    t = (dates - start).astype(np.int64)
    n_days = int(t.max()) + 1
    keys = pd.MultiIndex.from_arrays([frame["store_id"].astype(str), frame["sku"].astype(str)])
    codes, uniques = pd.factorize(keys, sort=True)
    n_series = len(uniques)

    def dense(values, fill):
        a = np.full((n_series, n_days), fill, dtype=np.float64)
        a[codes, t] = values
        return a

    units = dense(frame["units"].to_numpy(np.float64), np.nan)
    first = np.full(n_series, n_days)
    np.minimum.at(first, codes, t)
    started = np.arange(n_days)[None, :] >= first[:, None]
    units = np.where(started & np.isnan(units), 0.0, units)
    if "stockout" in frame:  # censored days count their estimated demand (labels and features)
        units = uncensor(units, dense(frame["stockout"].fillna(0).to_numpy(np.float64), 0.0) > 0)
    price = dense(frame["price"].to_numpy(np.float64), np.nan) if "price" in frame else None
    promo = dense(frame["promo"].to_numpy(np.float64), np.nan) if "promo" in frame else None
    event = None
    if "event" in frame:
        event = np.zeros(n_days)
        np.maximum.at(event, t, frame["event"].fillna(0).to_numpy(np.float64))
    future: set[int] = set()
    for d in calendar_events or ():
        future.add(int((np.datetime64(d, "D") - start).astype(np.int64)))
    return Panel(
        keys=[(str(a), str(b)) for a, b in uniques],
        start=start,
        units=units,
        price=price,
        promo=promo,
        event=event,
        future_events=future,
    )
