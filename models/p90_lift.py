"""The P90's lift: how much a quantile model's P90 must be raised to cover 90 % of days it never
saw, measured on the training data's own last steps.

A quantile model covers its training rows as it was told to, but not new days: its trees fitted
those rows' noise, and a new window adds what no training row showed (the level moved, a whole
region's demand shifted together). On smooth series the gap is large: Favorita's store receipts,
forecast 28 days ahead from a P90 that covers 91 % of its training rows, covered 72-91 % of the
next 28 days. The lift is measured as a forecast would be: the P90 model is fitted again on the
rows whose target step lies at least ``held_out`` steps before the cutoff, it forecasts the rows
whose close step lies within those last ``held_out`` steps (every horizon whose target is known),
and the lift is the smallest factor that puts 90 % of them at or below the factor times the P90.
It is never below 1: a model covers days it never saw no better than its own training rows, so a
lift below 1 would only follow one window's luck (zero-heavy series, whose held-out rows are
mostly zeros that any P90 covers). Several horizons are held out, not one: a single window's
coverage swings by 15 points from one window to the next.

>>> needed = lift_needed(np.array([1.0, 2.0, 0.0, 5.0]), np.array([2.0, 1.0, 1.0, 4.0]), 0.5)
>>> float(needed)
1.25
"""

from __future__ import annotations

import numpy as np

# Steps held out to measure the lift, in horizons (of the longest horizon the rows carry).
HELD_OUT_HORIZONS = 3
# At least this many held-out rows and this share of the rows left to fit on, else no lift.
MIN_HELD_OUT_ROWS = 200
MIN_FIT_SHARE = 0.5
MAX_LIFT = 3.0
COVERAGE = 0.9


def lift_needed(y: np.ndarray, p90: np.ndarray, coverage: float = COVERAGE) -> float:
    """The smallest factor ``c`` (at least 1, at most ``MAX_LIFT``) with ``y <= c * p90`` on a
    ``coverage`` share of the rows."""
    y, p90 = np.asarray(y, np.float64), np.asarray(p90, np.float64)
    if not len(y):
        return 1.0
    # The factor each row needs: 0 when already covered, "infinite" when its P90 is 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(y <= p90, 0.0, np.where(p90 > 0, y / p90, np.inf))
    c = float(np.quantile(need, coverage, method="higher"))
    return float(np.clip(c, 1.0, MAX_LIFT))


def held_out_split(
    target: np.ndarray, horizon: np.ndarray, cutoff: int, held_out: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, held)`` row masks: rows whose target is at least ``held_out`` steps before the
    cutoff (what the lift's model learns from) and rows whose close step is within the last
    ``held_out`` steps (what it forecasts); rows that straddle the split are in neither.

    >>> fit, held = held_out_split(np.array([5, 8, 9, 10]), np.array([1, 4, 1, 2]), 10, 3)
    >>> fit.tolist(), held.tolist()
    ([True, False, False, False], [False, False, True, True])
    """
    target, horizon = np.asarray(target), np.asarray(horizon)
    split = cutoff - held_out
    return target <= split, target - horizon > split
