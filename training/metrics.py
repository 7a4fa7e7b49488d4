"""Forecast accuracy metrics, M5 style: errors scaled by each series' in-sample naive errors.

>>> import numpy as np
>>> hist = np.array([1.0, 3.0, 1.0, 3.0])           # naive one-step errors: 2, 2, 2
>>> s = Scales.of(hist)
>>> round(rmsse(np.array([2.0, 2.0]), np.array([4.0, 0.0]), s), 6)
1.0
>>> mase(np.array([2.0, 2.0]), np.array([4.0, 0.0]), s)
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scales:
    """In-sample scales of one series: mean squared and mean absolute one-step naive error,
    over the history from its first sale (as M5 does: leading zeros do not count).

    >>> Scales.of(np.array([0.0, 0.0, 1.0, 3.0, 1.0]))  # from the first sale: zeros left out
    Scales(mse=4.0, mae=2.0)
    """

    mse: float
    mae: float

    @classmethod
    def of(cls, history: np.ndarray) -> Scales:
        h = np.asarray(history, dtype=np.float64)
        h = h[~np.isnan(h)]
        nz = np.flatnonzero(h > 0)
        h = h[nz[0] :] if len(nz) else h
        d = np.diff(h)
        if not len(d):
            return cls(0.0, 0.0)
        return cls(float(np.mean(d * d)), float(np.mean(np.abs(d))))

    @property
    def usable(self) -> bool:
        return self.mse > 0 and self.mae > 0


def rmsse(y: np.ndarray, f: np.ndarray, s: Scales) -> float:
    """Root mean squared scaled error of forecast ``f`` for actuals ``y``."""
    return float(np.sqrt(np.mean((y - f) ** 2) / s.mse))


def mase(y: np.ndarray, f: np.ndarray, s: Scales) -> float:
    """Mean absolute scaled error."""
    return float(np.mean(np.abs(y - f)) / s.mae)


def pinball(y: np.ndarray, q: np.ndarray, alpha: float) -> float:
    """Mean pinball (quantile) loss of quantile forecast ``q`` at level ``alpha``.

    >>> pinball(np.array([10.0]), np.array([8.0]), 0.9)
    1.8
    """
    d = np.asarray(y, float) - np.asarray(q, float)
    return float(np.mean(np.maximum(alpha * d, (alpha - 1.0) * d)))


def coverage(y: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals at or below the upper quantile forecast."""
    return float(np.mean(np.asarray(y) <= np.asarray(upper)))
