"""Online learning at the edge with River: forecast correction and an anomaly detector.

:class:`LevelCorrection` (the gateway's and the twin's) corrects the level of the central demand
forecast with the store's own sales. Per SKU it keeps exponentially weighted means (River
``stats.EWMean``) of what sold and of what the central model forecast for those days, and scales
the forecast by their ratio. The central models have no incremental update (statsforecast,
LightGBM); this is how the store adapts between releases.

:class:`OnlineCorrection` and :class:`EwmCorrection` learn from residuals instead (a store-wide
River ``LinearRegression`` on the SKU's EW mean residual, or that residual alone). They are kept
for comparison (``benchmarks/decisions.py``): on skewed retail demand their clipped, robust
residuals learn the typical day, which sits below the mean, and talk forecasts down.

:class:`OnlineAnomaly` scores a vector of the store's sales/sensor signals with River's
HalfSpaceTrees behind an online min-max scaler (HalfSpaceTrees assumes features in [0, 1]). It
misses clustered anomalies, so the rule-based detectors in :mod:`edge_runtime.shrink` carry theft;
its score is extra evidence.

>>> c = LevelCorrection()
>>> for _ in range(200):
...     c.learn_one("A", central=2.0, actual=3.0)
>>> round(c.predict_one("A", central=2.0), 2)  # 2 x (3 + 0.5) / (2 + 0.5)
2.8
"""

from __future__ import annotations

from typing import Protocol

from river import stats

# River's anomaly, linear-model and pipeline modules (SciPy and the tree learners behind them)
# are imported by the classes that use them: the gateway's start-up, which only needs
# ``LevelCorrection``, would otherwise spend about a second importing them before it connects.


class ForecastCorrection(Protocol):
    """What the day close and the twin need of an online correction."""

    def learn_one(self, sku: str, central: float, actual: float) -> None: ...

    def predict_one(self, sku: str, central: float) -> float: ...


class LevelCorrection:
    """Online correction of a central forecast's level, per SKU, from the store's own sales.

    ``corrected = central x f``, with ``f = (EW mean of actual + shrink) / (EW mean of central +
    shrink)`` clipped to ``bounds``. The two means are River ``stats.EWMean`` (``fading``: the
    weight of the newest day). ``shrink`` pulls ``f`` towards 1 where the SKU sells little.
    Below ``warmup`` learnt days the forecast is left alone. Feed it values in units of each
    SKU's typical day, as the day close and the twin do, so that ``shrink`` means the same for
    every SKU.

    Why a ratio of two means: a SKU's daily demand is skewed, with many quiet days and a few
    wholesale ones. The mean of what sold, over the mean of what was forecast, is unbiased for
    the level, and one wholesale day moves it by its share of the window, within ``bounds``.
    The residual learners below clip and robustify each day's error; they learn the quiet day
    and pull the level down. In the twin (Online Retail UK, validation weeks) they cost shelfcast
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
    ):
        if not 0.0 < fading <= 1.0 or shrink < 0 or not 0.0 < bounds[0] <= 1.0 <= bounds[1]:
            raise ValueError(
                f"need 0 < fading <= 1, shrink >= 0 and bounds around 1 "
                f"(got fading={fading}, shrink={shrink}, bounds={bounds})"
            )
        self.fading = fading
        self.shrink = shrink
        self.bounds = bounds
        self.warmup = warmup
        self._sold: dict[str, stats.EWMean] = {}
        self._forecast: dict[str, stats.EWMean] = {}
        self._seen: dict[str, int] = {}

    def factor_one(self, sku: str) -> float:
        """The SKU's level factor ``f`` (1 until it has learnt ``warmup`` days)."""
        if self._seen.get(sku, 0) < self.warmup:
            return 1.0
        k, forecast = self.shrink, self._forecast[sku].get()
        if forecast + k <= 0:
            return 1.0  # nothing forecast and no shrink: no evidence either way
        f = (self._sold[sku].get() + k) / (forecast + k)
        lo, hi = self.bounds
        return min(max(f, lo), hi)

    def predict_one(self, sku: str, central: float) -> float:
        """The corrected forecast for ``sku`` given the central one (never negative)."""
        return max(central * self.factor_one(sku), 0.0)

    def learn_one(self, sku: str, central: float, actual: float) -> None:
        """Learn from one realised day (call after predicting for it)."""
        sold = self._sold.get(sku)
        if sold is None:
            sold = self._sold[sku] = stats.EWMean(fading_factor=self.fading)
            self._forecast[sku] = stats.EWMean(fading_factor=self.fading)
        sold.update(max(actual, 0.0))
        self._forecast[sku].update(max(central, 0.0))
        self._seen[sku] = self._seen.get(sku, 0) + 1


class OnlineCorrection:
    """Online correction of a central forecast from per-SKU residuals (see module docstring).

    ``fading`` is the EWMean's weight of the newest residual; ``lr`` the SGD step size. Feed it
    values in units of each SKU's typical day (divide by a per-SKU scale): one store-wide model
    must not be dominated by the SKUs that sell in the hundreds. Residuals are clipped to
    ``+-clip`` and the loss is Huber, because one wholesale order is not a new level of demand
    (unclipped squared loss diverged on real Online Retail data); the correction itself is
    clipped to ``+-clip`` too.
    """

    def __init__(self, fading: float = 0.05, lr: float = 0.005, warmup: int = 1, clip: float = 3.0):
        self.fading = fading
        self.warmup = warmup
        self.clip = clip
        self._ewm: dict[str, stats.EWMean] = {}
        self._seen: dict[str, int] = {}
        from river import linear_model, optim

        self.model = linear_model.LinearRegression(
            optimizer=optim.SGD(lr), intercept_lr=lr * 0.1, l2=0.0, loss=optim.losses.Huber(1.0)
        )

    def _features(self, sku: str) -> dict[str, float]:
        ewm = self._ewm.get(sku)
        return {"ewm_residual": ewm.get() if ewm is not None else 0.0}

    def predict_one(self, sku: str, central: float) -> float:
        """The corrected forecast for ``sku`` given the central one (never negative)."""
        if self._seen.get(sku, 0) < self.warmup:
            return central
        shift = self.model.predict_one(self._features(sku))
        return max(central + min(max(shift, -self.clip), self.clip), 0.0)

    def learn_one(self, sku: str, central: float, actual: float) -> None:
        """Learn from one realised value (call after predicting for that period)."""
        residual = min(max(actual - central, -self.clip), self.clip)
        self.model.learn_one(self._features(sku), residual)
        ewm = self._ewm.get(sku)
        if ewm is None:
            ewm = self._ewm[sku] = stats.EWMean(fading_factor=self.fading)
        ewm.update(residual)
        self._seen[sku] = self._seen.get(sku, 0) + 1


class EwmCorrection:
    """The simplest online correction: central + the SKU's EW mean residual (River EWMean).

    Residuals are clipped to ``+-clip`` (same reason as :class:`OnlineCorrection`).

    >>> c = EwmCorrection(fading=0.5)
    >>> c.learn_one("A", central=2.0, actual=4.0); c.predict_one("A", central=2.0)
    4.0
    """

    def __init__(self, fading: float = 0.05, clip: float = 3.0):
        self.fading = fading
        self.clip = clip
        self._ewm: dict[str, stats.EWMean] = {}

    def predict_one(self, sku: str, central: float) -> float:
        ewm = self._ewm.get(sku)
        return central if ewm is None else max(central + ewm.get(), 0.0)

    def learn_one(self, sku: str, central: float, actual: float) -> None:
        ewm = self._ewm.get(sku)
        if ewm is None:
            ewm = self._ewm[sku] = stats.EWMean(fading_factor=self.fading)
        ewm.update(min(max(actual - central, -self.clip), self.clip))


class OnlineAnomaly:
    """HalfSpaceTrees over online min-max scaled signals; ``score_one`` then ``learn_one``.

    Scores are in [0, 1], higher is more anomalous.

    >>> a = OnlineAnomaly(seed=1, window_size=20)
    >>> for i in range(200):
    ...     a.learn_one({"sold": i % 3, "removed": i % 3})
    >>> a.score_one({"sold": 0, "removed": 2}) >= a.score_one({"sold": 1, "removed": 1})
    True
    """

    def __init__(self, seed: int = 0, n_trees: int = 25, height: int = 8, window_size: int = 250):
        from river import anomaly, compose, preprocessing

        self.model = compose.Pipeline(
            preprocessing.MinMaxScaler(),
            anomaly.HalfSpaceTrees(
                n_trees=n_trees, height=height, window_size=window_size, seed=seed
            ),
        )

    def score_one(self, x: dict[str, float]) -> float:
        return float(self.model.score_one(x))

    def learn_one(self, x: dict[str, float]) -> None:
        self.model.learn_one(x)
