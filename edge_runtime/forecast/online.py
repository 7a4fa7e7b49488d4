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

from collections.abc import Container, Iterable
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from river import stats


def import_river() -> None:
    """Import River now rather than at the first learning (inside a store-day close): a service
    calls this after its first commit, before it freezes its start-up heap, so that River's
    objects are frozen with the rest (``edge_runtime.heap``)."""
    from river import stats  # noqa: F401


class ForecastCorrection(Protocol):
    """What the day close and the twin need of an online correction."""

    def learn_one(self, sku: str, central: float, actual: float) -> None: ...

    def learn_many(
        self,
        skus: Iterable[str],
        central: Iterable[float],
        actual: Iterable[float],
        skip: Container[str] = ...,
    ) -> int: ...

    def predict_one(self, sku: str, central: float) -> float: ...

    def predict_many(self, skus: list[str], central: np.ndarray) -> np.ndarray: ...

    def undo_point(self) -> None: ...

    def undo(self) -> None: ...


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
        # Each SKU's two means as numbers, (sold, forecast), where it has not learnt since they
        # were restored (a snapshot, an undo): a River mean updated once with a number holds it
        # and learns on from it bit for bit as the original, so River is imported, and the
        # means made, at the SKU's next learning; a start that only predicts imports no River.
        self._kept: dict[str, tuple[float, float]] = {}
        self._seen: dict[str, int] = {}
        # Each SKU's means and days as they were at the undo point, recorded at its first
        # learning since (None: not recording).
        self._journal: dict[str, tuple[float, float, int] | None] | None = None

    def factor_one(self, sku: str) -> float:
        """The SKU's level factor ``f`` (1 until it has learnt ``warmup`` days)."""
        if self._seen.get(sku, 0) < self.warmup:
            return 1.0
        k, (sold, forecast) = self.shrink, self._means(sku)
        if forecast + k <= 0:
            return 1.0  # nothing forecast and no shrink: no evidence either way
        f = (sold + k) / (forecast + k)
        lo, hi = self.bounds
        return min(max(f, lo), hi)

    def predict_one(self, sku: str, central: float) -> float:
        """The corrected forecast for ``sku`` given the central one (never negative)."""
        return max(central * self.factor_one(sku), 0.0)

    def predict_many(self, skus: list[str], central: np.ndarray) -> np.ndarray:
        """:meth:`predict_one` of each SKU, ``central`` an array: the very float64 values, in
        one Python pass that reads each SKU's two River means and numpy for the arithmetic.
        Why: a day's close corrects every SKU of the store, and a method call per SKU was
        most of the correction's share of the close.

        >>> c = LevelCorrection(warmup=1)
        >>> c.learn_one("A", central=1.0, actual=3.0)
        >>> c.predict_many(["A", "B"], np.array([2.0, -1.0])).tolist()
        [4.0, 0.0]
        """
        central = np.asarray(central, dtype=np.float64)
        seen, warmup, means = self._seen.get, self.warmup, self._means
        warm = [i for i, sku in enumerate(skus) if seen(sku, 0) >= warmup]
        factor = np.ones(len(skus))
        if warm:
            pairs = np.array([means(skus[i]) for i in warm], dtype=np.float64).reshape(-1, 2)
            k, (lo, hi) = self.shrink, self.bounds
            sold, forecast = pairs[:, 0] + k, pairs[:, 1] + k
            evidence = ~(forecast <= 0)  # else 1.0: nothing forecast and no shrink
            f = sold[evidence] / forecast[evidence]
            f = np.where(lo > f, lo, f)  # max(f, lo) and min(., hi), NaN kept as they keep it
            factor[np.asarray(warm)[evidence]] = np.where(hi < f, hi, f)
        corrected = central * factor
        return np.where(corrected < 0.0, 0.0, corrected)  # max(., 0.0): -0.0 and NaN kept

    def undo_point(self) -> None:
        """Start recording what learning changes, so that :meth:`undo` can put it back.

        Why not a copy of the whole correction: the gateway takes an undo point at every store
        day's close, inside the transaction, for the rare rollback; a copy of every SKU's
        River means was a large part of a close, where this records the few numbers of the
        SKUs the close actually teaches.

        >>> c = LevelCorrection(warmup=1)
        >>> c.learn_one("A", central=1.0, actual=3.0); c.undo_point()
        >>> c.learn_one("A", central=1.0, actual=0.0); c.learn_one("B", central=1.0, actual=9.0)
        >>> c.undo(); c.predict_one("A", 1.0), c.predict_one("B", 1.0)
        (2.0, 1.0)
        """
        self._journal = {}

    def undo(self) -> None:
        """Back to the last :meth:`undo_point` (nothing when none is open); recording stops.

        A River ``EWMean`` updated once holds exactly that value, and it learns on from it as
        the original would: the means are put back bit for bit."""
        journal, self._journal = self._journal, None
        for sku, kept in (journal or {}).items():
            self._sold.pop(sku, None)
            self._forecast.pop(sku, None)
            if kept is None:
                del self._seen[sku]
                continue
            sold, forecast, self._seen[sku] = kept
            self._kept[sku] = sold, forecast

    def __getstate__(self) -> dict:
        """The means as numbers (see ``_kept``): a snapshot loads without importing River."""
        kept = {sku: (m.get(), self._forecast[sku].get()) for sku, m in self._sold.items()}
        # An undo point belongs to one transaction.
        return {**self.__dict__, "_journal": None, "_sold": {}, "_forecast": {},
                "_kept": {**self._kept, **kept}}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        # Snapshots from before undo points and before the means were kept as numbers.
        self.__dict__.update({"_journal": None, "_kept": {}, **state})

    def _means(self, sku: str) -> tuple[float, float]:
        kept = self._kept.get(sku)
        return kept if kept is not None else (self._sold[sku].get(), self._forecast[sku].get())

    def _mean_of(self, value: float | None) -> stats.EWMean:
        """A River mean holding ``value`` (None: a new one)."""
        from river import stats  # at the first learning (see ``_kept``)

        mean = stats.EWMean(fading_factor=self.fading)
        if value is not None:
            mean.update(value)
        return mean

    def learn_one(self, sku: str, central: float, actual: float) -> None:
        """Learn from one realised day (call after predicting for it)."""
        self.learn_many([sku], [central], [actual])

    def learn_many(
        self,
        skus: Iterable[str],
        central: Iterable[float],
        actual: Iterable[float],
        skip: Container[str] = frozenset(),
    ) -> int:
        """Learn one realised day of each SKU (in order; those in ``skip`` not); returns how
        many learnt. Why one loop, not :meth:`learn_one` per SKU: a close teaches every SKU
        of the store, and a method call and its lookups per SKU were much of that time."""
        sold_of, forecast_of, seen, journal = self._sold, self._forecast, self._seen, self._journal
        learnt = 0
        for sku, c, a in zip(skus, central, actual, strict=True):
            if sku in skip:
                continue
            sold = sold_of.get(sku)
            if journal is not None and sku not in journal:
                journal[sku] = (*self._means(sku), seen[sku]) if sku in seen else None
            if sold is None:
                kept = self._kept.pop(sku, (None, None))
                sold = sold_of[sku] = self._mean_of(kept[0])
                forecast_of[sku] = self._mean_of(kept[1])
            sold.update(0.0 if a < 0.0 else a)  # max(a, 0.0), -0.0 and NaN alike
            forecast_of[sku].update(0.0 if c < 0.0 else c)
            seen[sku] = seen.get(sku, 0) + 1
            learnt += 1
        return learnt
