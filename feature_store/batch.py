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
    PRICE_WINDOW,
    SAME_DOW_WEEKS,
    WINDOWS,
    YEAR_RATIO_CAP,
    Grain,
    close_names,
    ewm_name,
    grain,
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
    """History of many store-SKU series on one calendar of steps (days, or weeks: ``grain``).

    ``units[s, t]`` is NaN before series ``s`` began and a number (0 for no sales) from then on;
    ``price``/``promo`` are NaN where unknown; ``event[t]`` is 1 on calendar-event steps.
    ``known_ahead``: price and promo are planned, known before the step (shelf prices, a promo
    calendar), so a forecast may read them on its target step; otherwise (a price seen only on
    the days something sold) it reads the close step's only. ``censored[s, t]`` is True where the
    step's sales are known not to be its demand (:func:`censored_steps`); None: not known.

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
    grain: str = "day"
    known_ahead: bool = False
    censored: np.ndarray | None = None

    @property
    def n_days(self) -> int:
        """Steps of history (days at day grain, weeks at week grain)."""
        return int(self.units.shape[1])

    @property
    def step(self) -> Grain:
        return grain(self.grain)

    @property
    def dates(self) -> np.ndarray:
        """First day of each step."""
        return np.datetime64(self.start, "D") + np.arange(self.n_days) * self.step.days

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
    """Exponentially weighted means over the last ``MAX_WINDOW`` days (spec ``ewm_*``).

    Why not the 91-term sum as written: it costs 91 passes over the panel (most of a batch
    forecast's time). The untruncated smoothing ``E[t] = a u[t] + (1 - a) E[t-1]`` is a
    two-term recursion (scipy's ``lfilter``, compiled), and the window's sum is
    ``E[t] - (1 - a)^W E[t-W]``: the same weights (:func:`~feature_store.spec.ewm_weights`),
    a well-conditioned difference since ``(1 - a)^W < 1 %``.
    """
    from scipy.signal import lfilter

    stacked = np.stack([u0, (u0 > 0).astype(np.float64), valid.astype(np.float64)])
    w = MAX_WINDOW
    # A window without a sale is exactly 0, as the sum over it is (and a cut history agrees).
    no_sale = _window_sum(_cum(stacked[1]), w) == 0
    for a in EWM_ALPHAS:
        full = lfilter([a], [1.0, -(1.0 - a)], stacked, axis=2)
        sums = full.copy()
        sums[:, :, w:] -= (1.0 - a) ** w * full[:, :, :-w]
        sums[:2, no_sale] = 0.0
        units, sales, weight = sums
        seen = weight > 1e-12  # a difference of equal sums leaves rounding dust, not 0
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
    season = panel.step.season
    offset = (-h) % season  # steps back from the close to the target's weekday
    total = np.zeros(len(series), dtype=np.float64)
    count = np.zeros(len(series), dtype=np.float64)
    for j in range(SAME_DOW_WEEKS):
        day = close - offset - season * j
        ok = day >= 0
        vals = np.full(len(series), np.nan)
        vals[ok] = u[series[ok], day[ok]]
        seen = ~np.isnan(vals)
        total += np.where(seen, vals, 0.0)
        count += seen
    return np.where(count > 0, total / np.maximum(count, 1.0), 0.0)


def _window_mean(cum_sum, cum_n, series, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the seen units over steps ``lo..hi`` (inclusive, clipped to the history) of each
    row's series, and how many seen steps it averages."""
    n_days = cum_sum.shape[1] - 1
    lo, hi = np.clip(lo, 0, n_days), np.clip(hi + 1, 0, n_days)
    total = cum_sum[series, hi] - cum_sum[series, lo]
    count = cum_n[series, hi] - cum_n[series, lo]
    return np.where(count > 0, total / np.maximum(count, 1.0), 0.0), count


def _year_features(panel: Panel, series, close, target) -> dict[str, np.ndarray]:
    """``year_lag``, ``year_mean`` and ``year_ratio`` (spec) of each row."""
    g = panel.step
    valid = ~np.isnan(panel.units)
    cum_sum, cum_n = _cum(np.where(valid, panel.units, 0.0)), _cum(valid.astype(np.float64))
    back = target - g.year
    lag, _ = _window_mean(cum_sum, cum_n, series, back, back)
    half = g.year_span // 2
    mean, _ = _window_mean(cum_sum, cum_n, series, back - half, back + half)
    base_end = close - g.year
    base, seen = _window_mean(cum_sum, cum_n, series, base_end - g.year_base + 1, base_end)
    ratio = np.where(base > 0, mean / np.where(base > 0, base, 1.0), np.where(mean > 0, np.inf, 1))
    ratio = np.where(seen > 0, np.minimum(ratio, YEAR_RATIO_CAP), -1.0)
    return {"year_lag": lag, "year_mean": mean, "year_ratio": ratio}


def regular_price(panel: Panel) -> np.ndarray | None:
    """``[series, step]``: the highest known price over the last ``PRICE_WINDOW`` steps (NaN
    until a price is known); the reference a price cut is measured against."""
    if panel.price is None:
        return None
    price = np.where(np.isnan(panel.units), np.nan, panel.price)
    out = price.copy()
    for k in range(1, PRICE_WINDOW):
        np.fmax(out[:, k:], price[:, :-k], out=out[:, k:])
    return out


def _planned(panel: Panel, values: np.ndarray | None, series, target) -> np.ndarray:
    """Each row's planned value on its target step (NaN when not planned or beyond the data)."""
    out = np.full(len(series), np.nan)
    if values is None or not panel.known_ahead:
        return out
    inside = target < panel.n_days
    out[inside] = values[series[inside], target[inside]]
    return out


def _promo_price_features(panel: Panel, series, close, target) -> dict[str, np.ndarray]:
    """``target_promo`` and ``target_price_ratio`` (spec) of each row."""
    promo = np.nan_to_num(_planned(panel, panel.promo, series, target), nan=0.0)
    ratio = np.ones(len(series))
    regular = regular_price(panel)
    if regular is not None:
        valid = ~np.isnan(panel.units)
        last = _ffill(np.where(valid, panel.price, np.nan))[series, close]
        price = _planned(panel, panel.price, series, target)
        price = np.where(np.isnan(price), last, price)
        ref = regular[series, close]
        ok = ~np.isnan(price) & (ref > 0)
        ratio[ok] = price[ok] / ref[ok]
    return {"target_promo": promo, "target_price_ratio": ratio}


def feature_rows(
    panel: Panel,
    close: np.ndarray,
    series: np.ndarray,
    day: np.ndarray,
    horizon: np.ndarray,
) -> np.ndarray:
    """The demand model's input matrix (float32, columns in spec order) for rows of
    (series index, close-step index, horizon in steps)."""
    series, day, horizon = (np.asarray(a, dtype=np.int64) for a in (series, day, horizon))
    if len(horizon) and (horizon.min() < 1 or horizon.max() > MAX_HORIZON):
        raise ValueError(
            f"horizon must be in 1..{MAX_HORIZON}, got {horizon.min()}..{horizon.max()}"
        )
    target = day + horizon
    dates = np.datetime64(panel.start, "D") + target * panel.step.days
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
        **_year_features(panel, series, day, target),
        **_promo_price_features(panel, series, day, target),
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
    panel: Panel,
    last_day: int,
    stride: int = 7,
    min_age: int = 7,
    seed: int = 0,
    max_horizon: int = MAX_HORIZON,
    recent: int | None = None,
    phases: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(series, close day, horizon)`` of the training rows: close days every ``stride`` days
    (random phase per series, :func:`training_phases`), every horizon up to ``max_horizon``
    whose target day is on or before ``last_day``; with ``recent``, only close days in the
    last ``recent`` steps (older days still feed the features, a year back included).
    ``phases``: the phases of this panel's series, when it is a partition of a larger panel
    (then a partition without rows gives empty arrays instead of an error).

    >>> p = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=np.zeros((1, 40)))
    >>> s, d, h = training_index(p, last_day=39)
    >>> bool((d + h <= 39).all()), bool((d >= 6).all())
    (True, True)
    """
    partition = phases is not None
    if phases is None:
        phases = training_phases(len(panel.keys), stride, seed)
    first = panel.first_day()
    empty = np.zeros(0, np.int64)
    s_list, d_list, h_list = [empty], [empty], [empty]
    hs = np.arange(1, max_horizon + 1)
    for s in range(len(panel.keys)):
        lo = first[s] + min_age - 1
        if recent is not None:
            lo = max(lo, last_day - recent)
        days = np.arange(lo + int(phases[s]), last_day, stride)
        if not len(days):
            continue
        d = np.repeat(days, len(hs))
        h = np.tile(hs, len(days))
        keep = d + h <= last_day
        s_list.append(np.full(int(keep.sum()), s))
        d_list.append(d[keep])
        h_list.append(h[keep])
    series, day, horizon = (np.concatenate(a) for a in (s_list, d_list, h_list))
    if not len(series) and not partition:
        raise_no_training_rows(min_age, last_day)
    return series, day, horizon


def raise_no_training_rows(min_age: int, last_day: int) -> None:
    """The error of a panel without training rows, wherever its rows were computed."""
    raise ValueError(
        f"no training rows: every series is younger than {min_age} days before day {last_day}"
    )


def training_phases(n_series: int, stride: int = 7, seed: int = 0) -> np.ndarray:
    """Each series' random phase of its close days (``0..stride-1``), drawn in series order
    from ``seed``: drawn once for the whole panel, so a partition of its series gets the rows
    the whole panel would.

    >>> training_phases(4, stride=7, seed=0).tolist()
    [5, 4, 3, 1]
    """
    rng = np.random.default_rng(seed)
    # One scalar draw per series, as the rows have always been drawn (a vector draw differs).
    return np.array([int(rng.integers(stride)) for _ in range(n_series)], dtype=np.int64)


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


# Fewer distinct dates than this, all on one weekday, do not prove a weekly history.
_WEEKLY_EVIDENCE = 8


def infer_grain(dates: np.ndarray) -> str:
    """``"week"`` when every date of a history falls on one weekday (one row per week, dated by
    its first or last day) over at least 8 distinct dates, else ``"day"``.

    >>> d = np.datetime64("2012-01-06") + 7 * np.arange(10)
    >>> infer_grain(d), infer_grain(np.datetime64("2012-01-06") + np.arange(10))
    ('week', 'day')
    """
    days = np.unique(np.asarray(dates).astype("datetime64[D]").astype(np.int64))
    if len(days) >= _WEEKLY_EVIDENCE and len(np.unique(days % 7)) == 1:
        return "week"
    return "day"


def panel_from_frame(
    frame,
    calendar_events: Sequence[str] | None = None,
    grain_name: str | None = None,
    known_ahead: bool = False,
) -> Panel:
    """Dense panel from a canonical long frame (``store_id, sku, date, units`` and optional
    ``price, promo, event, stockout``). Steps without a row after a series' first row are 0
    units; a ``stockout`` step's units are its estimated demand (``uncensor``). The
    grain is learnt from the dates (:func:`infer_grain`) unless ``grain_name`` is given: a weekly
    history becomes a panel of weeks. ``known_ahead``: see :class:`Panel`.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"store_id": ["S", "S"], "sku": ["A", "A"],
    ...                    "date": pd.to_datetime(["2024-01-01", "2024-01-03"]), "units": [2, 5]})
    >>> panel_from_frame(df).units.tolist()
    [[2.0, 0.0, 5.0]]
    """
    import pandas as pd

    dates = pd.to_datetime(frame["date"]).dt.normalize().to_numpy().astype("datetime64[D]")
    g = grain(grain_name or infer_grain(dates))
    start = dates.min()
    offset = (dates - start).astype(np.int64)
    if (offset % g.days).any():
        raise ValueError(f"dates are not whole {g.name}s apart from {start}; cannot use {g.name}s")
    t = offset // g.days
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
    censored = censored_steps(frame, dense)
    if censored is not None:  # censored days count their estimated demand (features)
        units = uncensor(units, censored)
    price = dense(frame["price"].to_numpy(np.float64), np.nan) if "price" in frame else None
    promo = dense(frame["promo"].to_numpy(np.float64), np.nan) if "promo" in frame else None
    event = None
    if "event" in frame:
        event = np.zeros(n_days)
        np.maximum.at(event, t, frame["event"].fillna(0).to_numpy(np.float64))
    future: set[int] = set()
    for d in calendar_events or ():
        future.add(int((np.datetime64(d, "D") - start).astype(np.int64)) // g.days)
    return Panel(
        keys=[(str(a), str(b)) for a, b in uniques],
        start=start,
        units=units,
        price=price,
        promo=promo,
        event=event,
        future_events=future,
        grain=g.name,
        known_ahead=known_ahead,
        censored=censored,
    )


def censored_steps(frame, dense) -> np.ndarray | None:
    """``[series, step]`` True where a step's sales are censored: its shelf closed empty
    (``stockout``, the one definition of a stock-out day); None when the frame does not say.
    ``dense(values, fill)`` lays a column out as the panel's ``[series, step]`` array."""
    if "stockout" not in frame:
        return None
    return dense(frame["stockout"].fillna(0).to_numpy(np.float64), 0.0) > 0
