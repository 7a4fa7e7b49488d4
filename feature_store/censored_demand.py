"""Censored demand at the daily grain: the one treatment of a day whose shelf closed empty.

A day that closed with the shelf empty (on hand exactly 0 at the day's close) sold what there
was, not what was asked for: its sales are a lower bound on its demand. Learning it as a low
day would talk the forecast down, order less and empty the shelf again. So wherever a day's
units are learnt from (training labels and features, the gateway's streaming series and its
River correction at day close, the twin, which runs the gateway's own objects) such a day
counts as its estimated demand:

    demand = max(sold, level)

``level`` being the series' exponentially weighted mean of its *in-stock* days before that day
(``IN_STOCK_SPAN`` days of span; censored days never enter it, so one stock-out cannot feed
the next). A series with no in-stock day yet has no level: its censored day counts as sold.
Central training goes one step further for the demand model's own labels: a censored day's
label weighs 0 in its loss (``training.loss_weights``), since an estimate is not an observation;
its features still read the estimated demand.

Why the series' own in-stock level and not the model's forecast of that day: training has no
forecast for its history, and the rule must give the same number in training, at the gateway
and in the twin. A negative on-hand is not an empty shelf: the store kept selling what the
ledger did not know it had, so the sales are the demand.

Computed two ways with identical values (a test checks it): :func:`uncensor` over a panel in
batch, :class:`InStockLevel` one closed day at a time at the gateway.

>>> import numpy as np
>>> units = np.array([[4.0, 2.0, 0.0, 6.0]])
>>> empty = np.array([[False, False, True, False]])  # day 3 closed with an empty shelf
>>> uncensor(units, empty).round(3).tolist()
[[4.0, 2.0, 3.862, 6.0]]
>>> level = InStockLevel()
>>> [round(level.close("A", u, e), 3) for u, e in zip(units[0].tolist(), empty[0].tolist())]
[4.0, 2.0, 3.862, 6.0]
"""

from __future__ import annotations

import numpy as np

IN_STOCK_SPAN = 28  # days: the level's exponential weighting, alpha = 2 / (span + 1)
ALPHA = 2.0 / (IN_STOCK_SPAN + 1.0)


def shelf_empty(on_hand: np.ndarray | float) -> np.ndarray | bool:
    """Did the shelf close empty: on hand exactly 0 (negative is a ledger short of receipts)."""
    return np.asarray(on_hand) == 0


def uncensor(units: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """``units`` (series x days, NaN before a series starts) with each day flagged in
    ``empty`` replaced by ``max(units, level)``; the level of in-stock days only."""
    units = np.asarray(units, dtype=np.float64)
    empty = np.asarray(empty, dtype=bool)
    if units.shape != empty.shape:
        raise ValueError(f"units {units.shape} and empty {empty.shape} differ in shape")
    out = units.copy()
    level = np.full(units.shape[0], np.nan)
    for t in range(units.shape[1]):
        out[:, t] = close_levels(level, units[:, t], empty[:, t])
    return out


def close_levels(level: np.ndarray, day: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """One closed day of many series at once: their demand (``day``'s units, lifted to the
    level where the shelf closed ``empty``), updating ``level`` in place (NaN: no in-stock day
    yet; a NaN in ``day``: the series has not started, left as it is).

    >>> level = np.array([np.nan, 5.0])
    >>> close_levels(level, np.array([2.0, 1.0]), np.array([False, True])).tolist(), level.tolist()
    ([2.0, 5.0], [2.0, 5.0])
    """
    out = day.copy()
    lift = empty & ~np.isnan(level) & ~np.isnan(day)
    out[lift] = np.maximum(day[lift], level[lift])
    learn = ~empty & ~np.isnan(day)
    first = learn & np.isnan(level)
    level[first] = day[first]
    more = learn & ~first
    level[more] += ALPHA * (day[more] - level[more])
    return out


class InStockLevel:
    """Streaming side of :func:`uncensor`: each key's level, one closed day at a time.

    >>> level = InStockLevel()
    >>> level.close("A", 0.0, empty=True)  # no in-stock day yet: what sold
    0.0
    >>> level.close("A", 5.0, empty=False), level.close("A", 1.0, empty=True)
    (5.0, 5.0)
    """

    def __init__(self) -> None:
        self.levels: dict[str, float] = {}

    def close(self, key: str, units: float, empty: bool) -> float:
        """Record a closed day of ``key``; returns the units to learn from (its demand)."""
        level = self.levels.get(key)
        if empty:
            return units if level is None else max(units, level)
        self.levels[key] = units if level is None else level + ALPHA * (units - level)
        return units
