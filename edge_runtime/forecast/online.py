"""Online learning at the edge: River's level correction of the central demand forecast.

:class:`LevelCorrection` (the gateway's, so the twin's) corrects the level of the central demand
forecast with the store's own sales. Per SKU it keeps exponentially weighted means, River
``stats.EWMean``'s, of what sold and of what the central model forecast for those days, and
scales the forecast by their ratio. The central models have no incremental update (statsforecast,
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

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class ForecastCorrection(Protocol):
    """What the day close and the twin need of an online correction."""

    def learn_many(
        self, skus: Sequence[str], central: np.ndarray, actual: np.ndarray, learn: np.ndarray
    ) -> int: ...

    def factors(self, skus: Sequence[str]) -> np.ndarray: ...

    def undo_point(self) -> None: ...

    def undo(self) -> None: ...


class LevelCorrection:
    """Online correction of a central forecast's level, per SKU, from the store's own sales.

    ``corrected = central x f``, with ``f = (EW mean of actual + shrink) / (EW mean of central +
    shrink)`` clipped to ``bounds``. The two means are River ``stats.EWMean``'s (``fading``: the
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

    Why the means are columns of every SKU, not a River object each: a close teaches every SKU
    of the store one day and reads every SKU's factor, and a call per SKU into River was a
    large part of a close (and River's import, ~0.1 CPU-s, part of the first one after a
    start). River's ``EWMean`` takes its first value, then ``fading x value + (1 - fading) x
    mean``: the same float64 operations over arrays give its means bit for bit
    (``tests/test_online.py`` holds them to River's own).

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
        self._empty()

    def _empty(self) -> None:
        self._row: dict[str, int] = {}  # a SKU's row in the columns, from its first learning
        self._skus: list[str] = []  # the SKU of each row
        self._sold = np.zeros(0)  # EW mean of what sold
        self._forecast = np.zeros(0)  # EW mean of what was forecast
        self._seen = np.zeros(0, dtype=np.int64)  # days learnt
        # The rows' count and copies of the columns at the undo point (None: not recording).
        self._undo: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None

    def factors(self, skus: Sequence[str]) -> np.ndarray:
        """Each SKU's level factor ``f`` (1 where it has not learnt ``warmup`` days)."""
        rows = np.fromiter(map(self._row.get, skus, [-1] * len(skus)), np.int64, len(skus))
        known = rows >= 0
        at = rows[known]
        sold, forecast = self._sold[at], self._forecast[at]
        k = self.shrink
        # Nothing forecast and no shrink: no evidence either way (f = 1).
        evidence = (self._seen[at] >= self.warmup) & ~(forecast + k <= 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.minimum(np.maximum((sold + k) / (forecast + k), self.bounds[0]), self.bounds[1])
        out = np.ones(len(skus))
        out[known] = np.where(evidence, f, 1.0)
        return out

    def factor_one(self, sku: str) -> float:
        """The SKU's level factor ``f`` (see :meth:`factors`)."""
        return float(self.factors([sku])[0])

    def predict_one(self, sku: str, central: float) -> float:
        """The corrected forecast for ``sku`` given the central one (never negative)."""
        return max(central * self.factor_one(sku), 0.0)

    def undo_point(self) -> None:
        """Start recording what learning changes, so that :meth:`undo` can put it back.

        The gateway takes an undo point at every store day's close, inside the transaction,
        for the rare rollback: a copy of the three columns.

        >>> c = LevelCorrection(warmup=1)
        >>> c.learn_one("A", central=1.0, actual=3.0); c.undo_point()
        >>> c.learn_one("A", central=1.0, actual=0.0); c.learn_one("B", central=1.0, actual=9.0)
        >>> c.undo(); c.predict_one("A", 1.0), c.predict_one("B", 1.0)
        (2.0, 1.0)
        """
        n = len(self._skus)
        self._undo = n, self._sold[:n].copy(), self._forecast[:n].copy(), self._seen[:n].copy()

    def undo(self) -> None:
        """Back to the last :meth:`undo_point` (nothing when none is open); recording stops.
        SKUs first learnt since are forgotten whole."""
        kept, self._undo = self._undo, None
        if kept is None:
            return
        n, sold, forecast, seen = kept
        for sku in self._skus[n:]:
            del self._row[sku]
        del self._skus[n:]
        self._sold[:n], self._forecast[:n], self._seen[:n] = sold, forecast, seen
        self._sold[n:], self._forecast[n:], self._seen[n:] = 0.0, 0.0, 0

    def learn_many(
        self, skus: Sequence[str], central: np.ndarray, actual: np.ndarray, learn: np.ndarray
    ) -> int:
        """Learn one realised day of the SKUs where ``learn`` is true (call after predicting
        for it); ``skus`` distinct. Returns how many learnt."""
        picked = np.flatnonzero(learn)
        rows = self._rows([skus[i] for i in picked.tolist()])
        x_sold = np.maximum(np.asarray(actual, dtype=np.float64)[picked], 0.0)
        x_forecast = np.maximum(np.asarray(central, dtype=np.float64)[picked], 0.0)
        first = self._seen[rows] == 0
        a, b = self.fading, 1.0 - self.fading  # River's EWMean, in its order of operations
        self._sold[rows] = np.where(first, x_sold, a * x_sold + b * self._sold[rows])
        self._forecast[rows] = np.where(
            first, x_forecast, a * x_forecast + b * self._forecast[rows]
        )
        self._seen[rows] += 1
        return len(rows)

    def learn_one(self, sku: str, central: float, actual: float) -> None:
        """Learn from one realised day of one SKU (see :meth:`learn_many`)."""
        self.learn_many([sku], np.array([central]), np.array([actual]), np.ones(1, bool))

    def _rows(self, skus: list[str]) -> np.ndarray:
        """The SKUs' rows, new ones added (zero means, no day learnt)."""
        row, have = self._row, self._skus
        for sku in skus:
            if sku not in row:
                row[sku] = len(have)
                have.append(sku)
        if len(have) > len(self._seen):
            size = max(64, 2 * len(have))
            self._sold, self._forecast = _grown(self._sold, size), _grown(self._forecast, size)
            self._seen = _grown(self._seen, size)
        return np.fromiter(map(row.__getitem__, skus), np.int64, len(skus))

    def __getstate__(self) -> dict:
        """The pickled form of before the columns (each SKU's two means as numbers, its days
        learnt): snapshots stay readable both ways across an upgrade or a rollback."""
        n = len(self._skus)
        means = zip(self._sold[:n].tolist(), self._forecast[:n].tolist(), strict=True)
        return {"fading": self.fading, "shrink": self.shrink, "bounds": self.bounds,
                "warmup": self.warmup, "_sold": {}, "_forecast": {}, "_journal": None,
                "_kept": dict(zip(self._skus, means, strict=True)),
                "_seen": dict(zip(self._skus, self._seen[:n].tolist(), strict=True))}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        # Also snapshots whose means are River objects (``_sold``/``_forecast``, from before
        # they were kept as numbers): their ``get`` is the mean.
        self.fading, self.shrink = state["fading"], state["shrink"]
        self.bounds, self.warmup = state["bounds"], state["warmup"]
        self._empty()
        kept, sold, forecast = state.get("_kept", {}), state["_sold"], state["_forecast"]
        seen = state["_seen"]
        skus = list(seen)
        rows = self._rows(skus)
        means = [kept[s] if s in kept else (sold[s].get(), forecast[s].get()) for s in skus]
        self._sold[rows] = [m[0] for m in means]
        self._forecast[rows] = [m[1] for m in means]
        self._seen[rows] = [seen[s] for s in skus]


def _grown(column: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=column.dtype)
    out[: len(column)] = column
    return out
