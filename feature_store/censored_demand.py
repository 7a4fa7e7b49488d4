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

The rule is one function, :func:`censored_day_demand`, also the day total of the hourly
recovery (:mod:`feature_store.latent_demand`), which knows how much of the day the shelf was
stocked: a day-grain caller knows only that it closed empty, so it has seen none of the day in
stock and the rule reduces to ``max(sold, level)``.

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
# The usual level counts as this share of a day seen in stock: the prior a partly stocked day's
# own rate is shrunk towards (chosen on validation days before every scored day).
PRIOR_SHARE = 0.5


def censored_day_demand(
    sold: np.ndarray,
    in_stock_sales: np.ndarray | float,
    in_stock_share: np.ndarray | float,
    usual: np.ndarray,
) -> np.ndarray:
    """The demand of a day its shelf was out for part of: ``in_stock_sales`` (sold while
    stocked) plus the day's unseen share (``1 - in_stock_share`` of its expected demand) at its
    rate, the rate being ``(in_stock_sales + PRIOR_SHARE * usual) / (in_stock_share +
    PRIOR_SHARE)`` (the day's own rate shrunk towards the ``usual`` level, so a few units sold
    over a small share cannot make a huge multiplier), and never below ``sold``. NaN ``usual``
    (no level yet): ``sold``.

    >>> censored_day_demand(np.array([4.0, 1.0]), 0.0, 0.0, np.array([3.0, 3.0])).tolist()
    [4.0, 3.0]
    >>> # sold out in the first 30 % of the day: 2 / 0.3 = 6.7 x the usual 1; shrunk: 4.2
    >>> round(float(censored_day_demand(np.array(2.0), 2.0, 0.3, np.array(1.0))), 3)
    4.188
    """
    sold = np.asarray(sold, dtype=np.float64)
    usual = np.asarray(usual, dtype=np.float64)
    share = np.clip(in_stock_share, 0.0, 1.0)
    rate = (in_stock_sales + PRIOR_SHARE * usual) / (share + PRIOR_SHARE)
    demand = np.maximum(sold, in_stock_sales + (1.0 - share) * rate)
    return np.where(np.isnan(usual), sold, demand)


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
    out[lift] = censored_day_demand(day[lift], 0.0, 0.0, level[lift])
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
            return units if level is None else float(censored_day_demand(units, 0.0, 0.0, level))
        self.levels[key] = units if level is None else level + ALPHA * (units - level)
        return units
