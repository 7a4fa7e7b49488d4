"""The demand distribution the edge decisions share: negative binomial from a mean and a P90.

The demand model gives, per SKU and day, a mean and a P90. Stock-out, replenishment and
phantom-inventory decisions all need a distribution of demand over several days; this module is
the one place that turns (mean, P90) into one:

- daily standard deviation ``sigma = (P90 - mean) / z90`` (the normal approximation of the
  quantile), floored at ``sqrt(mean)`` so it is never less dispersed than Poisson;
- demand over ``d`` days (days independent): mean ``d * mean``, variance ``d * sigma**2``;
- a negative binomial with that mean and variance (counts, right-skewed, handles intermittent
  items), via ``r = m**2 / (v - m)`` and ``p = r / (r + m)``;
- when the P50 is given too, the variance is at least what puts the distribution's median at
  the P50 (lumpy demand: median far below the mean).

Everything is vectorised over SKUs (numpy arrays in, arrays out).

>>> import numpy as np
>>> m, v = over_days(np.array([2.0]), np.array([4.0]), days=3)
>>> float(m[0]), round(float(v[0]), 3)
(6.0, 7.306)
>>> round(float(prob_at_least(m, v, np.array([6.0]))[0]), 3)
0.539
"""

from __future__ import annotations

import numpy as np

from edge_runtime.forecast.incomplete_beta import regularized_incomplete_beta

Z90 = 1.2815515655446004  # standard normal 0.9 quantile
_MIN_EXCESS = 1e-6  # variance must exceed the mean for a negative binomial
# How far under ``below`` a tail bound must be for its exact probability to be skipped: far
# more than the incomplete beta's own error, so a value computed exactly would be under too.
BOUND_MARGIN = 1e-6


def floored_forecast(mean: np.ndarray, p90: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A forecast's daily mean and P90 as decisions read them: the mean at least 0, the P90 at
    least that (a model's raw output, or River's shift, may put either below)."""
    mean = np.maximum(mean, 0.0)
    return mean, np.maximum(p90, mean)


def daily_sigma(mean: np.ndarray, p90: np.ndarray) -> np.ndarray:
    """Daily demand standard deviation from mean and P90, never below Poisson's ``sqrt(mean)``."""
    mean = np.asarray(mean, dtype=np.float64)
    p90 = np.asarray(p90, dtype=np.float64)
    return np.maximum((p90 - mean) / Z90, np.sqrt(np.maximum(mean, 0.0)))


def variance_from_median(mean: np.ndarray, p50: np.ndarray, iterations: int = 40) -> np.ndarray:
    """Daily variance of the negative binomial with this mean whose median is at most ``p50``.

    Lumpy demand (a few large orders) has a median far below its mean, which a variance read
    off the P90 misses. For a fixed mean, P(D <= k) grows as the dispersion grows, so the
    largest ``r`` with ``P(D <= floor(p50)) >= 0.5`` is found by bisection on ``log r``
    (vectorised); where even Poisson satisfies it the Poisson variance is returned.
    """
    m = np.maximum(np.asarray(mean, dtype=np.float64), 1e-12)
    k = np.floor(np.maximum(np.asarray(p50, dtype=np.float64), 0.0)) + 1.0
    lo = np.full(m.shape, np.log(1e-4))  # very dispersed: median 0, condition holds
    hi = np.full(m.shape, np.log(1e6))  # ~Poisson
    holds_at_hi = regularized_incomplete_beta(np.exp(hi), k, np.exp(hi) / (np.exp(hi) + m)) >= 0.5
    for _ in range(iterations):
        mid = (lo + hi) / 2
        r = np.exp(mid)
        ok = regularized_incomplete_beta(r, k, r / (r + m)) >= 0.5
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    r = np.exp(lo)
    return np.where(holds_at_hi, m, m + m * m / r)


def over_days(
    mean: np.ndarray,
    p90: np.ndarray,
    days: float | np.ndarray,
    p50: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of total demand over ``days`` days (independent days).

    With ``p50`` the daily variance is the larger of the P90 one and :func:`variance_from_median`.
    """
    mean = np.maximum(np.asarray(mean, dtype=np.float64), 0.0)
    var = daily_sigma(mean, p90) ** 2
    if p50 is not None:
        var = np.maximum(var, variance_from_median(mean, p50))
    return mean * days, var * days


def _floored(total_mean: np.ndarray, total_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance the negative binomial is built from: the mean above 0, the
    variance above the mean. The probabilities and their bounds all read these."""
    m = np.maximum(np.asarray(total_mean, dtype=np.float64), 1e-12)
    return m, np.maximum(np.asarray(total_var, dtype=np.float64), m * (1.0 + _MIN_EXCESS))


def _nb_params(total_mean: np.ndarray, total_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m, v = _floored(total_mean, total_var)
    r = m * m / (v - m)
    return r, r / (r + m)


def prob_at_least(
    total_mean: np.ndarray,
    total_var: np.ndarray,
    k: np.ndarray,
    below: float | None = None,
    exact: np.ndarray | None = None,
) -> np.ndarray:
    """P(D >= k) for negative-binomial demand D; ``k`` is rounded up to whole units.

    ``k <= 0`` gives 1 (already out); zero expected demand gives 0 for any ``k >= 1``.

    ``below``: a probability under which the caller needs no exact value. Where
    :func:`tail_bound` already puts P(D >= k) under it (with :data:`BOUND_MARGIN` to spare),
    that bound is returned instead of the value (so it is under ``below`` too), except at the
    rows ``exact`` marks (a boolean mask). Why: a decision only acts on SKUs near or above its
    threshold, and the incomplete beta of all the others was most of the cost of deciding a
    store day's close (thousands of well-stocked SKUs).

    >>> m, v, k = np.array([2.0, 2.0]), np.array([3.0, 3.0]), np.array([3.0, 40.0])
    >>> [round(float(x), 6) for x in prob_at_least(m, v, k)]
    [0.319616, 0.0]
    >>> [round(float(x), 6) for x in prob_at_least(m, v, k, below=0.45)]  # the 2nd: a bound
    [0.319616, 0.002073]
    """
    total_mean = np.asarray(total_mean, dtype=np.float64)
    k = np.ceil(np.asarray(k, dtype=np.float64))
    r, p = _nb_params(total_mean, np.asarray(total_var, dtype=np.float64))
    # P(D <= k-1) = I_p(r, k) (regularised incomplete beta); guard k >= 1 for betainc.
    k1 = np.maximum(k, 1.0)
    if below is None:
        cdf = regularized_incomplete_beta(r, k1, p)
    else:
        bound = tail_bound(total_mean, total_var, k)
        need = ~(bound < below - BOUND_MARGIN)  # NaN (a degenerate forecast): computed
        if exact is not None:
            need |= np.asarray(exact, dtype=bool)
        need &= ~((k <= 0) | ((total_mean <= 0) & (k >= 1)))  # set below whatever the CDF
        cdf = np.array(1.0 - bound, dtype=np.float64)
        if need.any():
            cdf[need] = regularized_incomplete_beta(r[need], k1[need], p[need])
    out = np.where(k <= 0, 1.0, 1.0 - cdf)
    return np.where((total_mean <= 0) & (k >= 1), 0.0, np.clip(out, 0.0, 1.0))


def tail_bound(total_mean: np.ndarray, total_var: np.ndarray, k: np.ndarray) -> np.ndarray:
    """An upper bound of P(D >= k) for the negative binomial :func:`prob_at_least` uses (its
    mean and variance, as :func:`_nb_params` floors them): Cantelli's inequality
    ``P(D - m >= t) <= v / (v + t**2)`` for ``t = ceil(k) - m > 0``, else 1.

    >>> [round(float(b), 4) for b in tail_bound(np.array([2.0]), np.array([3.0]), np.array([5.0]))]
    [0.25]
    """
    m, v = _floored(total_mean, total_var)
    t = np.ceil(np.asarray(k, dtype=np.float64)) - m
    with np.errstate(invalid="ignore"):
        return np.where(t > 0, v / (v + t * t), 1.0)


def tail_bound_level(total_mean: np.ndarray, total_var: np.ndarray, p: float) -> np.ndarray:
    """A stock above which :func:`tail_bound` is under ``p`` (inf where ``p`` <= 0): Cantelli's
    bound solved for ``t``, ``m + sqrt(v (1 - p) / p)``, nudged up a hair against rounding.

    >>> [round(float(x), 4) for x in tail_bound_level(np.array([2.0]), np.array([3.0]), 0.25)]
    [5.0]
    """
    m, v = _floored(total_mean, total_var)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = m + np.sqrt(v * (1.0 - p) / p) * (1.0 + 1e-9) + 1e-9
    return np.where(np.isfinite(level) & (p > 0), level, np.inf)


def prob_zero(total_mean: np.ndarray, total_var: np.ndarray) -> np.ndarray:
    """P(D == 0) for negative-binomial demand: ``p ** r`` (computed in log space)."""
    total_mean = np.asarray(total_mean, dtype=np.float64)
    r, p = _nb_params(total_mean, np.asarray(total_var, dtype=np.float64))
    return np.where(total_mean <= 0, 1.0, np.exp(r * np.log(p)))
