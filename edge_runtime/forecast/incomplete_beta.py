"""The regularised incomplete beta function ``I_x(a, b)`` in numpy, vectorised.

The negative-binomial CDF the edge decisions use is ``P(D <= k - 1) = I_p(r, k)``. SciPy has
it (``scipy.special.betainc``), but importing ``scipy.special`` is one of the largest costs of
a gateway's start, and the first decisions after a restart need the function: a gateway that
computes it itself acknowledges its first events sooner.

The evaluation is the classical one:

- the continued fraction ``I_x(a, b) = x**a (1-x)**b / (a B(a, b)) / (1 + d1/(1 + d2/(1 + ...)))``
  with ``d(2m+1) = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1))`` and
  ``d(2m) = m(b-m)x / ((a+2m-1)(a+2m))``, which converges fast for ``x < (a+1)/(a+b+2)``;
  above that point the symmetry ``I_x(a, b) = 1 - I_(1-x)(b, a)`` brings ``x`` back below it;
- the fraction is evaluated front to back (modified Lentz), each element until its own
  convergents agree to :data:`TOLERANCE`, so a few slow elements do not slow the others;
- the prefactor is taken in logarithms, and ``log B(a, b)`` for large arguments from
  Stirling's series written as differences, so ``B(1e6, 5)`` keeps its digits where three
  log-gammas near ``1.3e7`` would lose them.

Accuracy (tests/test_incomplete_beta.py): SciPy's values to 1e-9 relative (1e-12 absolute)
for ``a`` up to 1e10 against ``b`` up to 1e4, the decisions' range; where both exceed about
1e5 the rounding of ``a log x`` itself leaves some 1e-8.

>>> import numpy as np
>>> [round(float(v), 12) for v in regularized_incomplete_beta(2.0, 3.0, np.array([0.0, 0.4, 1.0]))]
[0.0, 0.5248, 1.0]
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

Real = TypeVar("Real", float, np.ndarray)  # the shared formulas serve floats and arrays alike

TOLERANCE = 1e-15  # relative change of the continued fraction's convergent at which it stops
STIRLING_FROM = 10.0  # log-gamma by Stirling's series from here on (tail below 1e-15)
ELEMENTWISE_UP_TO = 48  # elements evaluated one by one in floats rather than in arrays
_TINY = 1e-300  # stands in for an exact zero in the Lentz recurrences
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Stirling's series for log Gamma(z) - ((z - 1/2) log z - z + log(2 pi)/2): B_2n / (2n(2n-1)),
# the coefficients of z**-(2n-1).
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)


def regularized_incomplete_beta(
    a: np.ndarray | float, b: np.ndarray | float, x: np.ndarray | float
) -> np.ndarray:
    """``I_x(a, b)`` element-wise (broadcast), for ``a > 0``, ``b > 0`` and ``0 <= x <= 1``;
    NaN where an argument is NaN, a ``ValueError`` naming the first other one out of range.

    Up to :data:`ELEMENTWISE_UP_TO` elements are evaluated one by one in plain floats (a
    decision on a few SKUs would otherwise pay numpy's per-call cost at every term of the
    fraction), more in arrays; both follow the same formulas.

    >>> float(regularized_incomplete_beta(1.0, 1.0, 0.25))  # the uniform CDF
    0.25
    """
    a, b, x = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, x)))
    if a.size <= ELEMENTWISE_UP_TO:
        abx = list(zip(a.ravel().tolist(), b.ravel().tolist(), x.ravel().tolist(), strict=True))
        if not all(0 < u < math.inf and 0 < v < math.inf and 0 <= w <= 1 for u, v, w in abx):
            _check_domain(a, b, x)
        return np.array([_one(*e) for e in abx], dtype=np.float64).reshape(a.shape)
    _check_domain(a, b, x)
    shape = a.shape
    a, b, x = a.ravel(), b.ravel(), x.ravel()
    known = ~(np.isnan(a) | np.isnan(b) | np.isnan(x))
    out = np.where(known, np.where(x >= 1.0, 1.0, 0.0), np.nan)
    inner = known & (x > 0.0) & (x < 1.0)
    a, b, x = a[inner], b[inner], x[inner]
    flip = x > (a + 1.0) / (a + b + 2.0)
    log_x, log_1mx = np.log(x), np.log1p(-x)
    a_, b_ = np.where(flip, b, a), np.where(flip, a, b)
    x_ = np.where(flip, 1.0 - x, x)
    log_front = (
        a_ * np.where(flip, log_1mx, log_x)
        + b_ * np.where(flip, log_x, log_1mx)
        - log_beta(a_, b_)
        - np.log(a_)
    )
    value = np.exp(log_front) / _continued_fraction(a_, b_, x_)
    out[inner] = np.clip(np.where(flip, 1.0 - value, value), 0.0, 1.0)
    return out.reshape(shape)


def log_gamma(z: np.ndarray) -> np.ndarray:
    """``log Gamma(z)`` element-wise for ``z > 0``: Stirling's series from
    :data:`STIRLING_FROM`, below it from ``z + 10`` with ``Gamma(z + 1) = z Gamma(z)``.

    >>> [round(float(v), 12) for v in log_gamma(np.array([1.0, 0.5, 100.0]))]
    [0.0, 0.572364942925, 359.134205369575]
    """
    z = np.asarray(z, dtype=np.float64)
    low = z < STIRLING_FROM
    shift = int(STIRLING_FROM)
    shifted = np.where(low, z + shift, z)
    out = (shifted - 0.5) * np.log(shifted) - shifted + _HALF_LOG_2PI + _stirling_tail(shifted)
    if low.any():
        z_low = z[low]
        product = z_low.copy()  # z (z+1) ... (z+9), at most 19!/9!: no overflow
        for i in range(1, shift):
            product *= z_low + i
        out[low] -= np.log(product)
    return out


def log_beta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log B(a, b)`` element-wise for ``a, b > 0``.

    Where the larger argument ``L`` reaches :data:`STIRLING_FROM`, ``log Gamma(L + s) -
    log Gamma(L)`` (``s`` the smaller) comes from Stirling's series as a difference,
    ``(L - 1/2) log1p(s/L) + s log(L + s) - s + tail(L + s) - tail(L)``, whose terms are of
    the size of the result rather than of ``log Gamma(L)``.

    >>> round(float(log_beta(np.array(2.0), np.array(3.0))), 12) == round(math.log(1 / 12), 12)
    True
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    shape, a, b = a.shape, a.ravel(), b.ravel()
    large, small = np.maximum(a, b), np.minimum(a, b)
    out = np.empty_like(a)
    big = large >= STIRLING_FROM
    if big.any():
        s, top = small[big], large[big]
        out[big] = log_gamma(s) - _log_rise(top, s, np.log(top + s), np.log1p(s / top))
    if not big.all():
        lo_a, lo_b = a[~big], b[~big]
        lg_a, lg_b, lg_ab = log_gamma(np.stack([lo_a, lo_b, lo_a + lo_b]))
        out[~big] = lg_a + lg_b - lg_ab
    return out.reshape(shape)


def _log_rise(big: Real, small: Real, log_sum: Real, log1p_ratio: Real) -> Real:
    """``log Gamma(big + small) - log Gamma(big)`` by Stirling (``big >=`` :data:`STIRLING_FROM`),
    in floats or arrays; ``log_sum = log(big + small)``, ``log1p_ratio = log1p(small / big)``."""
    tail = _stirling_tail(big + small) - _stirling_tail(big)
    return (big - 0.5) * log1p_ratio + small * log_sum - small + tail


def _stirling_tail(z: Real) -> Real:
    """The series part of Stirling's formula for ``z >=`` :data:`STIRLING_FROM`, floats or arrays."""
    inv = 1.0 / z
    inv2 = inv * inv
    total = 0.0 * z
    for coefficient in reversed(_STIRLING):
        total = total * inv2 + coefficient
    return total * inv


def _term(step: int, a: Real, b: Real, x: Real) -> Real:
    """The continued fraction's ``d(step)``, in floats or arrays."""
    m = step // 2
    if step % 2:
        return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
    return m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))


def max_steps(larger: Real) -> Real:
    """Continued-fraction terms allowed per element, given ``max(a, b)``: the fraction needs of
    the order of ``sqrt(max(a, b))`` terms below the symmetry point; this leaves ample room."""
    return 200.0 + 20.0 * larger**0.5


def _continued_fraction(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``1 + d1/(1 + d2/(1 + ...))`` by modified Lentz, each element to its own convergence.

    Elements leave the working arrays as they converge, so the cost follows the slowest few
    only in their own rows; once few are left (:data:`ELEMENTWISE_UP_TO`), each goes on alone
    in floats (:func:`_continue_one`), where a step of a few rows costs less than the dozen
    array operations of the array step.
    """
    out = np.ones_like(x)
    rows = np.arange(x.size)
    limit = max_steps(np.maximum(a, b))
    value, c, d = np.ones_like(x), np.ones_like(x), np.zeros_like(x)
    step = 0
    while rows.size:
        step += 1
        term = _term(step, a, b, x)
        d = 1.0 + term * d
        d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
        c = 1.0 + term / c
        c = np.where(np.abs(c) < _TINY, _TINY, c)
        change = c * d
        value = value * change
        done = (np.abs(change - 1.0) < TOLERANCE) | (step >= limit)
        if done.any():
            out[rows[done]] = value[done]
            keep = ~done
            rows, a, b, x, value, c, d, limit = (
                v[keep] for v in (rows, a, b, x, value, c, d, limit)
            )
        if 0 < rows.size <= ELEMENTWISE_UP_TO:
            left = (v.tolist() for v in (rows, a, b, x, value, c, d, limit))
            for row, *state in zip(*left, strict=True):
                out[row] = _continue_one(step, *state)
            break
    return out


def _continue_one(step: int, a: float, b: float, x: float, value: float, c: float, d: float,
                  limit: float) -> float:  # fmt: skip
    """One element of :func:`_continued_fraction` from after ``step`` on, in floats: the array
    step's operations in the same order (NaN included), so the same value to the bit."""
    while True:
        step += 1
        term = _term(step, a, b, x)
        d = 1.0 + term * d
        d = 1.0 / (_TINY if abs(d) < _TINY else d)
        c = 1.0 + term / c
        c = _TINY if abs(c) < _TINY else c
        change = c * d
        value = value * change
        if abs(change - 1.0) < TOLERANCE or step >= limit:
            return value


def _one(a: float, b: float, x: float) -> float:
    """``I_x(a, b)`` of one element in plain floats: the array path's formulas."""
    if math.isnan(a) or math.isnan(b) or math.isnan(x):
        return math.nan
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    flip = x > (a + 1.0) / (a + b + 2.0)
    log_x, log_1mx = math.log(x), math.log1p(-x)
    if flip:
        a, b, x, log_x, log_1mx = b, a, 1.0 - x, log_1mx, log_x
    large, small = max(a, b), min(a, b)
    if large >= STIRLING_FROM:
        rise = _log_rise(large, small, math.log(large + small), math.log1p(small / large))
        lbeta = math.lgamma(small) - rise
    else:
        lbeta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    front = math.exp(a * log_x + b * log_1mx - lbeta - math.log(a))
    value, c, d = 1.0, 1.0, 0.0
    for step in range(1, int(max_steps(max(a, b))) + 1):
        term = _term(step, a, b, x)
        d = 1.0 + term * d
        d = 1.0 / (d if abs(d) >= _TINY else _TINY)
        c = 1.0 + term / c
        c = c if abs(c) >= _TINY else _TINY
        change = c * d
        value *= change
        if abs(change - 1.0) < TOLERANCE:
            break
    result = front / value
    return min(1.0, max(0.0, 1.0 - result if flip else result))


def _check_domain(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> None:
    """One line naming the first argument out of its domain, its value and its index (NaN is
    no value, not a wrong one: it gives NaN, as a missing forecast should)."""
    if ((a > 0) & (b > 0) & (a < np.inf) & (b < np.inf) & (x >= 0) & (x <= 1)).all():
        return  # the usual case, in one pass (NaN fails it and is looked at below)
    rules = (
        ("a", a, "finite and > 0", (a > 0) & (a < np.inf) | np.isnan(a)),
        ("b", b, "finite and > 0", (b > 0) & (b < np.inf) | np.isnan(b)),
        ("x", x, "in [0, 1]", (x >= 0) & (x <= 1) | np.isnan(x)),
    )
    for name, values, expected, ok in rules:
        if not ok.all():
            at = int(np.flatnonzero(~ok.ravel())[0])
            raise ValueError(
                f"incomplete beta: {name} must be {expected}, got {values.ravel()[at]} at {at}"
            )
