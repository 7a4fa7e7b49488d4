"""The store's own trailing level of each SKU, which the day close blends into the model's level.

Why: what an order covers is the forecast's level over lead time + review period, and the
marginal buffer (``edge_runtime.decide.service_level``) already holds the large days. The
model's mean carries its expectation of those large days too, and it errs per SKU by more than a
robust trailing mean of the SKU's ordinary days does; half of each is a steadier level than
either. A trailing mean lags a season, so it is moved by the store's own season a year ago: the
store's units in the four weeks after the same day a year ago over the four weeks before it,
pooled over every SKU with a year of history (one ratio for the store, so no SKU's wholesale
orders set it). The record of how this was chosen is ``docs/records/trailing-level.md``.

>>> import numpy as np
>>> units = np.full((2, 392), 2.0)
>>> units[1, -5] = 40.0  # one large day: clipped at 5 x the SKU's usual day
>>> trailing_level(units, np.array([392, 392])).round(3).tolist()
[2.0, 2.111]
"""

from __future__ import annotations

import numpy as np

WINDOW_DAYS = 91  # the trailing mean's days (a season's quarter)
CLIP_USUAL_DAYS = 5.0  # a day counts at most this many of the SKU's usual (91-day mean) days
YEAR_DAYS = 364  # the same weekday a year back
SEASON_DAYS = 28  # the four weeks either side of that day the store's season is read from


def store_season(units: np.ndarray, lens: np.ndarray) -> float:
    """The store's units in the :data:`SEASON_DAYS` after the close's day a year ago over those
    in the :data:`SEASON_DAYS` before it (inclusive), summed over the rows holding all of them;
    1 when none does or nothing sold. ``units``: a row per SKU, the newest closed day in the
    last column (right-aligned, as ``SeriesPanel.window``); ``lens``: the days each row holds.

    >>> u = np.zeros((1, 392)); u[0, -392:-364] = 1.0; u[0, -364:-336] = 2.0
    >>> store_season(u, np.array([392])), store_season(u, np.array([100]))
    (2.0, 1.0)
    """
    width = units.shape[1]
    need = YEAR_DAYS + SEASON_DAYS
    if width < need:
        return 1.0
    full = lens >= need
    if not full.any():
        return 1.0
    ago = width - 1 - YEAR_DAYS  # the column of the close's day a year ago
    before = units[full, ago - SEASON_DAYS + 1 : ago + 1].sum()
    after = units[full, ago + 1 : ago + 1 + SEASON_DAYS].sum()
    return float(after / before) if before > 0 and after > 0 else 1.0


def trailing_level(units: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Each row's mean daily units over its last :data:`WINDOW_DAYS` held days, each day clipped
    at :data:`CLIP_USUAL_DAYS` times that window's plain mean (0 for a row with none), times
    :func:`store_season`. Arguments as :func:`store_season`."""
    recent = units[:, -WINDOW_DAYS:]
    days = np.minimum(lens, WINDOW_DAYS)
    seen = np.arange(WINDOW_DAYS)[None, :] >= (WINDOW_DAYS - days)[:, None]
    recent = np.where(seen, recent, 0.0)
    count = np.maximum(days, 1)
    usual = recent.sum(axis=1) / count
    clipped = np.minimum(recent, CLIP_USUAL_DAYS * usual[:, None]).sum(axis=1) / count
    return np.where(days > 0, clipped, 0.0) * store_season(units, lens)


def blended_level_factor(mean: np.ndarray, trailing: np.ndarray, weight: float) -> np.ndarray:
    """Per SKU, the factor that moves a forecast (SKUs x days) so its mean over the days is
    ``(1 - weight) x`` its own ``+ weight x trailing``; 1 where the forecast is 0 (nothing to
    scale: a SKU the model sees no demand for keeps none).

    >>> blended_level_factor(np.array([[2.0, 4.0], [0.0, 0.0]]), np.array([1.0, 5.0]), 0.5)
    array([0.66666667, 1.        ])
    """
    level = mean.mean(axis=1)
    blended = (1.0 - weight) * level + weight * trailing
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(level > 0, blended / level, 1.0)
