"""How much to trust a SKU's book stock: decays with time since its last count and with the
size of past count discrepancies.

Formula (``as_of`` and times in microseconds, ``days`` = elapsed days)::

    counted SKU:      confidence = exp(-days_since_last_count / tau) / (1 + alpha * d)
    never counted:    confidence = 0.5 * exp(-days_since_first_event / tau)

where ``d`` is an exponentially weighted mean (weight ``DISCREPANCY_WEIGHT`` on the newest count)
of each count's relative discrepancy ``|counted - expected| / max(|expected|, counted, 1)``,
which lies in [0, 1]. Defaults: ``tau`` = 14 days, ``alpha`` = 2. A SKU counted today with
perfect past counts scores 1.0; one whose counts were always wrong by 100 % scores at most 1/3.

>>> round(confidence(last_count_us=0, first_us=0, discrepancy=0.0, as_of_us=0), 3)
1.0
>>> round(confidence(last_count_us=0, first_us=0, discrepancy=0.5, as_of_us=14 * DAY_US), 3)
0.184
"""

from __future__ import annotations

import math

DAY_US = 86_400 * 1_000_000
TAU_DAYS = 14.0
ALPHA = 2.0
DISCREPANCY_WEIGHT = 0.3
NEVER_COUNTED_PRIOR = 0.5


def count_discrepancy(counted: int, expected: int) -> float:
    """Relative size of one count's correction, in [0, 1].

    >>> count_discrepancy(8, 10), count_discrepancy(10, 10), count_discrepancy(5, -3)
    (0.2, 0.0, 1.0)
    """
    return min(1.0, abs(counted - expected) / max(abs(expected), counted, 1))


def updated_discrepancy(previous: float, counts_before: int, counted: int, expected: int) -> float:
    """Fold one more count into the weighted discrepancy (the first count sets it)."""
    ratio = count_discrepancy(counted, expected)
    if counts_before == 0:
        return ratio
    return (1.0 - DISCREPANCY_WEIGHT) * previous + DISCREPANCY_WEIGHT * ratio


def confidence(
    last_count_us: int | None,
    first_us: int | None,
    discrepancy: float,
    as_of_us: int,
    tau_days: float = TAU_DAYS,
    alpha: float = ALPHA,
) -> float:
    """Confidence in [0, 1] of a SKU's book stock as of ``as_of_us`` (see the module formula)."""
    if last_count_us is None:
        if first_us is None:
            return 0.0
        days = max(0, as_of_us - first_us) / DAY_US
        return NEVER_COUNTED_PRIOR * math.exp(-days / tau_days)
    days = max(0, as_of_us - last_count_us) / DAY_US
    return math.exp(-days / tau_days) / (1.0 + alpha * discrepancy)
