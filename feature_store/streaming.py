"""Streaming side of the feature store: the features of :mod:`feature_store.spec` for one
store-SKU, updated one closed day at a time, with O(``MAX_WINDOW``) state per series.

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
from functools import lru_cache

import numpy as np

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
)

_CLOSE = close_names()
_N_CLOSE = len(_CLOSE)
_EWM_WEIGHTS = {a: np.array(ewm_weights(a)) for a in EWM_ALPHAS}


class SeriesState:
    """The last ``MAX_WINDOW`` days of one store-SKU and what the features need beyond them.

    Call :meth:`close_day` once per day in order, from the series' first day (a day without
    sales is a 0). ``price``/``promo`` of a day are optional (None = unknown; the last known price
    is carried forward as in batch).

    >>> s = SeriesState()
    >>> s.close_day(2.0, price=1.5)
    >>> s.days_seen
    1
    """

    __slots__ = ("_last_dow", "days_seen", "last_price", "last_promo", "last_sale_age", "units")

    def __init__(self) -> None:
        self.units: deque[float] = deque(maxlen=MAX_WINDOW)
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
        if price is not None and not np.isnan(price):
            self.last_price = float(price)
        self.last_promo = 0.0 if promo is None or np.isnan(promo) else float(promo)

    def close_features(self) -> np.ndarray:
        """Close-day features (float64, in ``close_names()`` order) as of the last closed day."""
        if not self.days_seen:
            raise ValueError(
                "no day closed yet: close_day() at least once before asking for features"
            )
        hist = np.fromiter(self.units, dtype=np.float64, count=len(self.units))
        n = len(hist)
        out = {}
        for k in LAGS:
            out[f"lag_{k}"] = hist[n - k] if k <= n else 0.0
        for w in WINDOWS:
            win = hist[-w:]
            m = len(win)
            s, sq = float(win.sum()), float((win * win).sum())
            mean = s / m
            zeros = float(np.count_nonzero(win == 0))
            out[f"mean_{w}"] = mean
            out[f"std_{w}"] = float(np.sqrt(max(sq / m - mean * mean, 0.0)))
            out[f"zero_share_{w}"] = zeros / m
            out[f"sale_interval_{w}"] = m / max(m - zeros, 1.0)
        newest_first = hist[::-1]
        sold = (newest_first > 0).astype(np.float64)
        for a, w in _EWM_WEIGHTS.items():
            w = w[:n]
            total = float(w.sum())
            out[ewm_name(a)] = float(w @ newest_first) / total
            out[ewm_name(a, "ewm_sale_share")] = float(w @ sold) / total
        if self.last_sale_age >= 0:
            since = min(self.days_seen - 1 - self.last_sale_age, DAYS_SINCE_CAP)
        else:
            since = DAYS_SINCE_CAP
        out["days_since_sale"] = float(since)
        out["z_last"] = (hist[-1] - out["mean_28"]) / (out["std_28"] + 1.0)
        out["age"] = float(min(self.days_seen, MAX_WINDOW))
        out["price"] = 0.0 if np.isnan(self.last_price) else self.last_price
        out["promo"] = self.last_promo
        return np.array([out[name] for name in _CLOSE], dtype=np.float64)

    def same_dow_mean(self, horizon: int) -> float:
        """Mean units on the last ``SAME_DOW_WEEKS`` days with the target's weekday."""
        offset = (-horizon) % 7
        hist = self.units
        vals = [
            hist[-1 - offset - 7 * j] for j in range(SAME_DOW_WEEKS) if offset + 7 * j < len(hist)
        ]
        return float(sum(vals) / len(vals)) if vals else 0.0

    def feature_row(
        self, horizon: int, target_day: np.datetime64, event: float = 0.0
    ) -> np.ndarray:
        """One demand-model input row (float32, spec order) for ``target_day = close + horizon``."""
        return self.feature_rows(target_day - np.timedelta64(horizon, "D"), [horizon], [event])[0]

    def feature_rows(self, close_day: np.datetime64, horizons=None, events=None) -> np.ndarray:
        """Rows for several horizons from the close day ``close_day`` (the last closed day)."""
        hs = list(range(1, MAX_HORIZON + 1)) if horizons is None else [int(h) for h in horizons]
        if any(h < 1 or h > MAX_HORIZON for h in hs):
            raise ValueError(f"horizon must be in 1..{MAX_HORIZON}, got {hs}")
        close = self.close_features()
        X = np.empty((len(hs), len(names())), dtype=DTYPE)
        X[:, :_N_CLOSE] = close
        day0 = int(np.datetime64(close_day, "D").astype(np.int64))
        X[:, _N_CLOSE : _N_CLOSE + 4] = _calendar(day0, tuple(hs))
        X[:, _N_CLOSE + 4] = 0.0 if events is None else [float(e) for e in events]
        X[:, _N_CLOSE + 5] = [self.same_dow_mean(h) for h in hs]
        return X


@lru_cache(maxsize=64)
def _calendar(day0: int, hs: tuple[int, ...]) -> np.ndarray:
    """Horizon, weekday, day of month and month of each target day: the same for every SKU
    at a close, so a gateway's day close computes them once, not once per SKU."""
    out = np.empty((len(hs), 4), dtype=np.float64)
    for i, h in enumerate(hs):
        target = np.datetime64(day0 + h, "D")
        month = target.astype("datetime64[M]")
        out[i] = (
            h,
            (day0 + h + 3) % 7,
            int((target - month.astype("datetime64[D]")).astype(np.int64)) + 1,
            int(month.astype(np.int64)) % 12 + 1,
        )
    return out
