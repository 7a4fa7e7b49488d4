"""The store's own level: how its in-stock sales run against the day-ahead forecast, pooled.

River's correction (``edge_runtime.forecast.online``) learns one factor per SKU, and a SKU's
ratio of sold to forecast over a few weeks is mostly which wholesale orders fell in them: it
learns noise. Pooled over every SKU of the store the same ratio is a precise figure, and it is
what a store-wide season the model misses (a spring ramp, a slow summer) shows first. So every
SKU's forecast is also scaled by the store's factor: the exponentially weighted sum of what
sold on in-stock SKU-days (each clipped at ``clip`` times its forecast, so one wholesale day
cannot carry the store) over the same sum of what was forecast for them, shrunk towards 1 by
``prior_days`` of the store's forecast, clipped to ``bounds`` and raised to ``power`` (half
the measured ratio: a store-wide figure still mixes the SKUs' seasons). Empty-shelf days are
left out, as everywhere (``feature_store.censored_demand``), and so are days the store did not
trade at all (no SKU sold: a closing day teaches nothing about the level).

>>> import numpy as np
>>> level = StoreLevel()
>>> for _ in range(30):  # the store sells 1.21x its forecast every day
...     level.learn_day(np.full(10, 2.0), np.full(10, 2.42))
>>> round(level.factor(20.0), 3)  # sqrt of the ratio, shrunk a little towards 1
1.077
>>> level.learn_day(np.full(10, 2.0), np.zeros(10))  # a closing day: nothing learnt
>>> round(level.factor(20.0), 3)
1.077
"""

from __future__ import annotations

import numpy as np


class StoreLevel:
    """The store's level factor (module docstring): ``learn_day`` each closed day, ``factor``
    at each re-score."""

    def __init__(
        self,
        power: float = 0.5,
        clip: float = 5.0,
        prior_days: float = 3.0,
        fading: float = 0.1,
        bounds: tuple[float, float] = (0.8, 1.25),
    ):
        self.power, self.clip, self.prior_days = power, clip, prior_days
        self.fading, self.bounds = fading, bounds
        self.sold = 0.0  # EW sum of in-stock SKU-days' (clipped) units
        self.forecast = 0.0  # EW sum of their day-ahead forecasts

    def learn_day(self, forecast: np.ndarray, sold: np.ndarray, in_stock=None) -> None:
        """One closed day: the day-ahead forecast and the units sold per SKU, and which SKUs'
        shelves held stock at the close (default: all)."""
        forecast = np.maximum(np.asarray(forecast, dtype=np.float64), 0.0)
        sold = np.maximum(np.asarray(sold, dtype=np.float64), 0.0)
        if sold.sum() <= 0:
            return  # the store did not trade
        seen = np.ones(sold.shape, dtype=bool) if in_stock is None else np.asarray(in_stock)
        keep = 1.0 - self.fading
        self.sold = keep * self.sold + float(np.minimum(sold, self.clip * forecast)[seen].sum())
        self.forecast = keep * self.forecast + float(forecast[seen].sum())

    def factor(self, day_forecast: float) -> float:
        """The factor on every SKU's forecast; ``day_forecast`` is the store's forecast of its
        next day (the prior's weight)."""
        prior = self.prior_days * max(float(day_forecast), 0.0)
        if self.forecast + prior <= 0:
            return 1.0
        ratio = (self.sold + prior) / (self.forecast + prior)
        return float(np.clip(ratio, *self.bounds) ** self.power)
