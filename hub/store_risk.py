"""What taking units out of a store for an online order risks: a promise the shelf cannot keep,
and walk-in shoppers who find the shelf empty before the store's next delivery.

- **Not there.** The hub sees a store's book figure, not its shelf. Units the book counts but
  the shelf lacks (phantom units, unrecorded shrink) are modelled as geometric with
  P(none) = the SKU's ledger confidence raised to ``power`` (the score is not a probability),
  lowered by ``decay`` for each recent conflict; the line fails when more than ``atp - qty``
  units are phantom.
- **Lost walk-in sale.** The store's own demand until its next delivery has mean
  ``lead_demand``; taking ``qty`` of ``atp`` units raises its expected shortfall
  ``E[(D - stock)+]`` by the difference.
- **Markdown relief.** Stock the store does not sell over the markdown horizon is marked down:
  ``E[(stock - D)+]`` units, ``D`` its demand over that horizon. Taking ``qty`` lowers that by
  ``qty`` minus the sales it costs in the horizon: every unit taken either was going to be
  marked down or was going to sell, so stock just below its expected sell-through still relieves
  some markdown (the demand may fall short), and stock far above it relieves a unit per unit.

Demand is negative binomial with a variance ``dispersion`` times its mean (the gateway's
P90 spread, ``edge_runtime.forecast.demand_distribution``), Poisson at ``dispersion`` 1.
Everything is vectorised over any array shape.

>>> p = not_there_probability(np.array([0.9, 0.9]), np.array([0, 0]), np.array([1.0, 6.0]),
...                           np.array([1.0, 1.0]), decay=0.7, power=1.0)
>>> p.round(4).tolist()
[0.1, 0.0]
>>> extra_lost_units(np.array([2.0]), np.array([3.0]), np.array([1.0])).round(3).tolist()
[0.323]
>>> markdown_units_relieved(np.array([10.0, 10.0, 0.0]), np.array([30.0, 10.0, 2.0]),
...                         np.array([1.0, 1.0, 1.0])).round(3).tolist()
[1.0, 0.458, 1.0]
>>> markdown_units_relieved(np.array([np.inf]), np.array([5.0]), np.array([1.0])).tolist()
[0.0]
"""

from __future__ import annotations

import numpy as np


def not_there_probability(
    confidence: np.ndarray,
    conflicts: np.ndarray,
    atp: np.ndarray,
    qty: np.ndarray,
    decay: float,
    power: float = 1.0,
) -> np.ndarray:
    """P(fewer than ``qty`` of the ``atp`` book units are on the shelf)."""
    c = np.clip(np.asarray(confidence, float), 0.0, 1.0) ** power
    c = c * decay ** np.asarray(conflicts, float)
    cushion = np.maximum(np.asarray(atp, float) - np.asarray(qty, float), 0.0)
    return (1.0 - c) ** (1.0 + cushion)


def demand_shortfall(mean: np.ndarray, stock: np.ndarray, dispersion=1.0) -> np.ndarray:
    """``E[(D - stock)+]`` for ``D`` of this mean and variance ``dispersion * mean``: negative
    binomial above 1, Poisson at 1 (arrays of one shape, or broadcast; stock >= 0)."""
    from scipy import special

    mean = np.maximum(np.asarray(mean, float), 0.0)
    stock = np.maximum(np.floor(np.asarray(stock, float)), 0.0)
    ratio = np.maximum(np.asarray(dispersion, float), 1.0)
    mean, stock, ratio = np.broadcast_arrays(mean, stock, ratio)
    if mean.size == 0:
        return np.zeros_like(mean)
    unbounded = ~np.isfinite(mean)  # no forecast of an end to demand: every unit sells
    if unbounded.any():
        finite = demand_shortfall(np.where(unbounded, 0.0, mean), stock, ratio)
        return np.where(unbounded, np.inf, finite)
    # Only k < stock enter the sum below; beyond 10 standard deviations the mass is nil.
    top = min(float((mean + 10.0 * np.sqrt(mean * ratio)).max()) + 10.0, float(stock.max()))
    k = np.arange(int(np.ceil(top)) + 1, dtype=float)
    log_mean = np.log(np.maximum(mean, 1e-300))[..., None]  # a zero mean: all mass at k = 0
    poisson = np.where(k > 0, k * log_mean, 0.0) - mean[..., None] - special.gammaln(k + 1)
    # NB(r, p) with mean m and variance ratio * m: r = m / (ratio - 1), p = 1 / ratio.
    over = ratio > 1.0 + 1e-9
    r = (np.maximum(mean, 1e-300) / np.where(over, ratio - 1.0, 1.0))[..., None]
    q = np.where(over, ratio, 2.0)[..., None]
    negbin = (
        special.gammaln(k + r) - special.gammaln(r) - special.gammaln(k + 1)
        - r * np.log(q) + k * np.log1p(-1.0 / q)
    )  # fmt: skip
    pmf = np.exp(np.where(over[..., None], negbin, poisson))
    below = (np.maximum(stock[..., None] - k, 0.0) * pmf).sum(axis=-1)
    return np.maximum(mean - stock + below, 0.0)


def extra_lost_units(
    lead_demand: np.ndarray, atp: np.ndarray, qty: np.ndarray, dispersion=1.0
) -> np.ndarray:
    """Walk-in units the store is expected to lose because ``qty`` of its ``atp`` left online."""
    atp = np.maximum(np.asarray(atp, float), 0.0)
    after = np.maximum(atp - np.asarray(qty, float), 0.0)
    with np.errstate(invalid="ignore"):  # unbounded demand: inf - inf, every unit taken sells
        extra = demand_shortfall(lead_demand, after, dispersion) - demand_shortfall(
            lead_demand, atp, dispersion
        )
    return np.where(np.isfinite(lead_demand), extra, atp - after)


def markdown_units_relieved(
    sell_through: np.ndarray, stock: np.ndarray, qty: np.ndarray, dispersion=1.0
) -> np.ndarray:
    """Units fewer expected to be left unsold (so marked down) after the markdown horizon, whose
    expected demand is ``sell_through``, when ``qty`` of ``stock`` leave online now."""
    stock = np.maximum(np.asarray(stock, float), 0.0)
    taken = np.minimum(np.asarray(qty, float), stock)
    return taken - extra_lost_units(sell_through, stock, qty, dispersion)
