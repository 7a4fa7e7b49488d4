"""The store's weekday correction of the demand model: one factor per weekday, pooled over SKUs.

Why: the central model can err by weekday the same way for a whole store (a store whose Sundays
sell more than the training stores' did). One SKU's days are too few and too noisy to learn
that, but a store's SKUs pooled give a few hundred SKU-days a week. The factor of weekday ``w``
is the exponentially weighted sum of what sold on in-stock ``w`` days over the same sum of what
the model forecast for them, both in units of each SKU's typical day (so every SKU weighs
alike), clipped to ``bounds``. Censored days (the shelf closed empty) are left out by the caller,
as the model's training and River's correction leave them out.

>>> w = WeekdayLevel(warmup=1)
>>> sunday = 6
>>> w.learn_day(sunday, forecast=[1.0, 1.0], actual=[1.5, 1.3])
>>> round(w.factor(sunday), 2), w.factor(0)  # Mondays not yet learnt
(1.4, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feature_store.spec import weekday


class WeekdayLevel:
    """Per-weekday multiplicative factor of the model's forecast (module doc).

    ``fading``: the weight of the newest day of that weekday (0.1: about ten weeks' memory);
    ``clip``: each SKU-day's actual counts at most this many typical days (one wholesale order
    would otherwise set a weekday's factor); ``warmup``: learnt days of a weekday before its
    factor leaves 1; ``shape_only``: divide the factors by their mean over the week, leaving the
    level to River's per-SKU correction.
    """

    def __init__(
        self,
        fading: float = 0.1,
        clip: float | None = 5.0,
        bounds: tuple[float, float] = (0.67, 1.5),
        warmup: int = 2,
        shape_only: bool = False,
        in_units: bool = False,
        with_censored: bool = False,
    ):
        if not 0.0 < fading <= 1.0 or not 0.0 < bounds[0] <= 1.0 <= bounds[1]:
            raise ValueError(f"need 0 < fading <= 1 and bounds around 1 (got {fading}, {bounds})")
        self.fading, self.clip, self.bounds = fading, clip, bounds
        self.warmup, self.shape_only, self.in_units = warmup, shape_only, in_units
        self.with_censored = with_censored  # an empty shelf's day as its estimated demand
        self._sold = np.zeros(7)
        self._forecast = np.zeros(7)
        self._seen = np.zeros(7, dtype=np.int64)

    def learn_day(
        self,
        weekday: int,
        forecast: Sequence[float],
        actual: Sequence[float],
        scale: Sequence[float] | None = None,
    ) -> None:
        """One closed day: the in-stock SKUs' forecast and actual, in typical days (``scale``:
        each SKU's typical day in units, to weigh SKUs by volume when ``in_units``)."""
        f = np.maximum(np.asarray(forecast, dtype=np.float64), 0.0)
        a = np.maximum(np.asarray(actual, dtype=np.float64), 0.0)
        if f.size == 0:
            return
        if self.clip is not None:
            a = np.minimum(a, self.clip)
        if self.in_units and scale is not None:
            f, a = f * np.asarray(scale), a * np.asarray(scale)
        keep = 1.0 - self.fading if self._seen[weekday] else 0.0
        self._sold[weekday] = keep * self._sold[weekday] + a.sum()
        self._forecast[weekday] = keep * self._forecast[weekday] + f.sum()
        self._seen[weekday] += 1

    def factors(self) -> np.ndarray:
        """The seven factors, Monday first (1 for a weekday not yet learnt)."""
        ready = (self._seen >= self.warmup) & (self._forecast > 0)
        raw = np.where(ready, self._sold / np.where(ready, self._forecast, 1.0), 1.0)
        if self.shape_only and ready.any() and self._sold[ready].sum() > 0:
            # the week's pooled ratio, so a weekday the model forecasts little weighs little
            level = self._sold[ready].sum() / self._forecast[ready].sum()
            raw = np.where(ready, raw / level, 1.0)
        return np.clip(raw, *self.bounds)

    def factor(self, weekday: int) -> float:
        """The factor of one weekday."""
        return float(self.factors()[weekday])

    def horizon_factors(self, close: np.datetime64, days: int) -> np.ndarray:
        """The factor of each of the ``days`` days after ``close`` (horizon 1 first)."""
        first = weekday(int(np.datetime64(close, "D").astype(np.int64))) + 1
        return self.factors()[(first + np.arange(days)) % 7]
