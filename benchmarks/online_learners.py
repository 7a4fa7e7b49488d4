"""The River learners the gateway does not run, kept to compare against what it does
(``benchmarks/decisions.py``; the gateway's correction is ``edge_runtime.forecast.online.LevelCorrection``).

:class:`OnlineCorrection` and :class:`EwmCorrection` learn from residuals (a store-wide River
``LinearRegression`` on the SKU's EW mean residual, or that residual alone): on skewed retail
demand their clipped, robust residuals learn the typical day, which sits below the mean, and
talk forecasts down.

:class:`OnlineAnomaly` scores a vector of the store's sales/sensor signals with River's
HalfSpaceTrees behind an online min-max scaler (HalfSpaceTrees assumes features in [0, 1]). It
misses clustered anomalies, so the rule-based detectors in ``edge_runtime.watch.shrink`` carry theft.

>>> c = EwmCorrection(fading=0.5)
>>> c.learn_one("A", central=2.0, actual=4.0); c.predict_one("A", central=2.0)
4.0
"""

from __future__ import annotations

from river import stats


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
