"""Each SKU's share of the store's level, read from the store's own trailing sales, which the day
close blends into the model's split of that level.

Why: what an order covers is the forecast's level over lead time + review period, and the model
errs per SKU by more than the SKU's own recent sales do, while a trailing mean lags the season
that the model (with its year-back features) follows. So the store's total stays the model's and
only its split over the SKUs moves: each SKU's level is blended with its 91-day mean times the
store-wide ratio of the model's level to those means, pooled over every SKU with both (one ratio
for the store, so no SKU's wholesale orders set it). Chosen on three validation windows, each
before the test weeks (``docs/records/validation-windows.md``): a plain pull towards the trailing
mean helps on two of them and loses on the third, where demand rises out of the winter.

>>> import numpy as np
>>> units = np.full((2, 100), 2.0)
>>> units[1, -5] = 40.0  # one large day counts in full: the model's mean carries them too
>>> trailing_level(units, np.array([100, 100])).round(3).tolist()
[2.0, 2.418]
"""

from __future__ import annotations

import numpy as np

WINDOW_DAYS = 91  # the trailing mean's days (a season's quarter)


def trailing_level(units: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Each row's mean daily units over its last :data:`WINDOW_DAYS` held days (0 for a row with
    none). ``units``: a row per SKU, the newest closed day in the last column (right-aligned, as
    ``SeriesPanel.window``); ``lens``: the days each row holds."""
    recent = units[:, -WINDOW_DAYS:]
    width = recent.shape[1]
    days = np.minimum(lens, width)
    seen = np.arange(width)[None, :] >= (width - days)[:, None]
    total = np.where(seen, recent, 0.0).sum(axis=1)
    return np.where(days > 0, total / np.maximum(days, 1), 0.0)


def split_level_factor(mean: np.ndarray, trailing: np.ndarray, weight: float) -> np.ndarray:
    """Per SKU, the factor that moves a forecast (SKUs x days) so its mean over the days is
    ``(1 - weight) x`` its own ``+ weight x trailing x r``, ``r`` the store's summed forecast
    level over its summed ``trailing`` (SKUs with both above 0): the store's total is kept, its
    split moves towards the trailing shares. 1 where either is 0 (a SKU the model sees no demand
    for keeps none; a SKU without sales keeps the model's level).

    >>> f = split_level_factor(np.array([[2.0, 4.0], [3.0, 3.0], [0.0, 0.0]]),
    ...                        np.array([1.0, 5.0, 7.0]), 0.5)
    >>> f.round(3).tolist()  # r = 6 / 6: SKU 0 pulled to 1, SKU 1 to 5, halfway
    [0.667, 1.333, 1.0]
    """
    level = mean.mean(axis=1)
    both = (level > 0) & (trailing > 0)
    if not both.any():
        return np.ones(level.shape[0])
    ratio = level[both].sum() / trailing[both].sum()
    blended = (1.0 - weight) * level + weight * trailing * ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(both, blended / level, 1.0)
