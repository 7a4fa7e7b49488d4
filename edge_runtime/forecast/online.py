"""Online learning at the edge with River: the correction of the central demand forecast.

:class:`LevelCorrection` (the gateway's, so the twin's) corrects the level of the central demand
forecast with the store's own sales. Per SKU it keeps exponentially weighted means (River
``stats.EWMean``) of what sold and of what the central model forecast for those days, and scales
the forecast by their ratio. The central models have no incremental update (statsforecast,
LightGBM); this is how the store adapts between releases. The learners it was measured against
(residual corrections, a HalfSpaceTrees anomaly detector) live with the benchmark that compares
them, ``benchmarks/online_learners.py``: the gateway does not run them.

>>> c = LevelCorrection()
>>> for _ in range(200):
...     c.learn_one("A", central=2.0, actual=3.0)
>>> round(c.predict_one("A", central=2.0), 2)  # 2 x (3 + 0.5) / (2 + 0.5)
2.8
"""

from __future__ import annotations

from typing import Protocol

from river import stats

# How far apart SKUs' true level factors are expected to lie (a standard deviation around 1),
# chosen on the twin's validation weeks; LevelCorrection weighs each SKU's factor against it.
LEVEL_SPREAD = 0.15


class ForecastCorrection(Protocol):
    """What the day close and the twin need of an online correction."""

    def learn_one(self, sku: str, central: float, actual: float) -> None: ...

    def predict_one(self, sku: str, central: float) -> float: ...


class LevelCorrection:
    """Online correction of a central forecast's level, per SKU, from the store's own sales.

    ``corrected = central x f``, with ``f = (EW mean of actual + shrink) / (EW mean of central +
    shrink)`` clipped to ``bounds`` and weighed by the SKU's noise (below). The two means are
    River ``stats.EWMean`` (``fading``: the weight of the newest day). ``shrink`` pulls ``f`` towards 1 where the SKU sells little.
    Below ``warmup`` learnt days the forecast is left alone. Feed it values in units of each
    SKU's typical day, as the day close and the twin do, so that ``shrink`` means the same for
    every SKU.

    Why a ratio of two means: a SKU's daily demand is skewed, with many quiet days and a few
    wholesale ones. The mean of what sold, over the mean of what was forecast, is unbiased for
    the level, and one wholesale day moves it by its share of the window, within ``bounds``.

    Why the factor is weighed by the SKU's own noise: for a SKU whose days include large orders,
    the ratio over a few weeks is mostly which orders fell in them, and does not carry over to
    the weeks it corrects. So ``f`` moves from 1 by the share ``w = s^2 / (s^2 + se^2)`` of its
    learnt distance, where ``s`` (``level_spread``) is how far apart SKUs' true level factors
    are expected to lie and ``se^2`` the variance of the SKU's own ratio: the EW variance of its
    actual days over the effective number of days the EW mean holds (``(2 - fading) /
    fading``), over the forecast's EW mean squared. A steady SKU's ratio is measured precisely
    and corrected nearly in full; a wholesale SKU's barely moves.
    Residual learners (``benchmarks/online_learners.py``) clip and robustify each day's error;
    they learn the quiet day and pull the level down. In the twin (Online Retail UK, validation weeks) they cost shelfcast
    5 points of lost-sales reduction, where this costs about 1.

    >>> c = LevelCorrection(warmup=2)
    >>> c.learn_one("A", central=4.0, actual=0.0); c.predict_one("A", 4.0)  # warming up
    4.0
    >>> for actual in [0.0, 0.0, 0.0, 20.0] * 50:  # quiet days, then a big one: mean 5
    ...     c.learn_one("A", central=5.0, actual=actual)
    >>> 4.0 < c.predict_one("A", 5.0) < 6.5  # the level, not the quiet day (0)
    True
    """

    def __init__(
        self,
        fading: float = 0.05,
        shrink: float = 0.5,
        bounds: tuple[float, float] = (0.5, 2.0),
        warmup: int = 7,
        level_spread: float = LEVEL_SPREAD,
    ):
        bad_bounds = not 0.0 < bounds[0] <= 1.0 <= bounds[1]
        if not 0.0 < fading <= 1.0 or shrink < 0 or bad_bounds or level_spread <= 0:
            raise ValueError(
                f"need 0 < fading <= 1, shrink >= 0, bounds around 1 and level_spread > 0 "
                f"(got fading={fading}, shrink={shrink}, bounds={bounds}, "
                f"level_spread={level_spread})"
            )
        self.fading = fading
        self.shrink = shrink
        self.bounds = bounds
        self.warmup = warmup
        self.level_spread = level_spread
        self._sold: dict[str, stats.EWMean] = {}
        self._sold_var: dict[str, stats.EWVar] = {}
        self._forecast: dict[str, stats.EWMean] = {}
        self._seen: dict[str, int] = {}

    def __setstate__(self, state: dict) -> None:
        """A correction saved before the factor was weighed (a gateway's snapshot) loads with
        the default spread and learns each SKU's variance from its next days on."""
        state.setdefault("level_spread", LEVEL_SPREAD)
        state.setdefault("_sold_var", {})
        self.__dict__.update(state)

    def factor_one(self, sku: str) -> float:
        """The SKU's level factor ``f`` (1 until it has learnt ``warmup`` days)."""
        if self._seen.get(sku, 0) < self.warmup:
            return 1.0
        k, forecast = self.shrink, self._forecast[sku].get()
        if forecast + k <= 0:
            return 1.0  # nothing forecast and no shrink: no evidence either way
        f = (self._sold[sku].get() + k) / (forecast + k)
        lo, hi = self.bounds
        f = min(max(f, lo), hi)
        days = (2.0 - self.fading) / self.fading  # effective days in an EW mean
        var = self._sold_var.get(sku)
        se2 = 0.0 if var is None else var.get() / (days * (forecast + k) ** 2)
        s2 = self.level_spread**2
        return 1.0 + (f - 1.0) * s2 / (s2 + se2)

    def predict_one(self, sku: str, central: float) -> float:
        """The corrected forecast for ``sku`` given the central one (never negative)."""
        return max(central * self.factor_one(sku), 0.0)

    def learn_one(self, sku: str, central: float, actual: float) -> None:
        """Learn from one realised day (call after predicting for it)."""
        sold = self._sold.get(sku)
        if sold is None:
            sold = self._sold[sku] = stats.EWMean(fading_factor=self.fading)
            self._forecast[sku] = stats.EWMean(fading_factor=self.fading)
        var = self._sold_var.get(sku)
        if var is None:
            var = self._sold_var[sku] = stats.EWVar(fading_factor=self.fading)
        sold.update(max(actual, 0.0))
        var.update(max(actual, 0.0))
        self._forecast[sku].update(max(central, 0.0))
        self._seen[sku] = self._seen.get(sku, 0) + 1
