"""What taking units out of a store for an online order risks: a promise the shelf cannot keep,
and walk-in shoppers who find the shelf empty before the store's next delivery.

- **Not there.** The hub sees a store's book figure, not its shelf. Units the book counts but
  the shelf lacks (phantom units, unrecorded shrink) are modelled as geometric with
  P(none) = the SKU's ledger confidence raised to ``power`` (the score is not a probability),
  lowered by ``decay`` for each recent conflict; the line fails when more than ``atp - qty``
  units are phantom.
- **Lost walk-in sale.** The store's own demand until its next delivery is Poisson with mean
  ``lead_demand``; taking ``qty`` of ``atp`` units raises its expected shortfall
  ``E[(D - stock)+]`` by the difference.

Both are vectorised over any array shape.

>>> p = not_there_probability(np.array([0.9, 0.9]), np.array([0, 0]), np.array([1.0, 6.0]),
...                           np.array([1.0, 1.0]), decay=0.7, power=1.0)
>>> p.round(4).tolist()
[0.1, 0.0]
>>> extra_lost_units(np.array([2.0]), np.array([3.0]), np.array([1.0])).round(3).tolist()
[0.323]
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


def poisson_shortfall(mean: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """``E[(D - stock)+]`` for ``D ~ Poisson(mean)`` (both arrays of one shape, stock >= 0)."""
    mean = np.maximum(np.asarray(mean, float), 0.0)
    stock = np.maximum(np.floor(np.asarray(stock, float)), 0.0)
    if mean.size == 0:
        return np.zeros_like(mean)
    top = float(mean.max())
    k = np.arange(int(np.ceil(top + 10.0 * np.sqrt(top) + 10.0)) + 1, dtype=float)
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(k[1:]))))
    log_mean = np.log(np.maximum(mean, 1e-300))[..., None]  # a zero mean: all mass at k = 0
    log_pmf = np.where(k > 0, k * log_mean, 0.0) - mean[..., None] - log_fact
    pmf = np.exp(log_pmf)
    below = (np.maximum(stock[..., None] - k, 0.0) * pmf).sum(axis=-1)
    return np.maximum(mean - stock + below, 0.0)


def extra_lost_units(lead_demand: np.ndarray, atp: np.ndarray, qty: np.ndarray) -> np.ndarray:
    """Walk-in units the store is expected to lose because ``qty`` of its ``atp`` left online."""
    atp = np.maximum(np.asarray(atp, float), 0.0)
    after = np.maximum(atp - np.asarray(qty, float), 0.0)
    return poisson_shortfall(lead_demand, after) - poisson_shortfall(lead_demand, atp)
