"""Stock-out prediction: will available stock run out within the replenishment lead time?

For each SKU, from the demand forecast (daily mean and P90) and the current available-to-promise
(ATP):

- ``probability`` = P(demand over the lead time >= ATP), demand negative binomial (see
  :mod:`edge_runtime.forecast.demand_distribution`); ATP <= 0 means already out (probability 1);
- ``expected_days`` = ATP / daily mean: the expected time until cumulative demand uses up ATP
  (Wald's identity for a steady demand rate); ``inf`` when no demand is expected.

:class:`StockoutMonitor` decides what to publish: a SKU is published when its probability first
reaches ``threshold``, then again only when the probability moved by at least ``min_change``
since the last publication; it is re-armed (and reported as cleared) once the probability falls
below ``threshold - hysteresis``. So a SKU hovering at the threshold does not flood the topic.

>>> import numpy as np
>>> risk = stockout_risk(np.array([2.0, 2.0]), np.array([4.0, 4.0]), np.array([3.0, 40.0]), 3)
>>> [round(float(p), 3) for p in risk.probability], [float(d) for d in risk.expected_days]
([0.919, 0.0], [1.5, 20.0])
>>> monitor = StockoutMonitor(threshold=0.5, min_change=0.1)
>>> monitor.update(["a", "b"], risk.probability).published
['a']
>>> monitor.update(["a", "b"], risk.probability).published  # unchanged: nothing new to say
[]
"""

from __future__ import annotations

from collections.abc import KeysView
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.forecast.demand_distribution import over_days, prob_at_least


@dataclass(frozen=True)
class StockoutRisk:
    """Per-SKU stock-out numbers, arrays aligned with the inputs.

    >>> risk = stockout_risk(np.array([2.0]), np.array([4.0]), np.array([3.0]), lead_time_days=3)
    >>> risk.probability.round(3).tolist(), risk.expected_days.tolist(), risk.lead_time_days
    ([0.919], [1.5], 3.0)
    """

    probability: np.ndarray
    expected_days: np.ndarray
    lead_time_days: float


def stockout_risk(
    mean_daily: np.ndarray,
    p90_daily: np.ndarray,
    atp: np.ndarray,
    lead_time_days: float,
    p50_daily: np.ndarray | None = None,
    below: float | None = None,
    exact: np.ndarray | None = None,
) -> StockoutRisk:
    """Probability of running out within ``lead_time_days`` and expected days until out.

    ``p50_daily`` (optional, the demand model's median) widens the distribution of lumpy items
    whose median is far below their mean. ``below`` and ``exact``: probabilities the caller
    does not need exactly, as in ``demand_distribution.prob_at_least`` (a bound under
    ``below`` stands in for them).
    """
    if lead_time_days <= 0:
        raise ValueError(f"lead_time_days must be > 0, got {lead_time_days}")
    mean_daily = np.asarray(mean_daily, dtype=np.float64)
    atp = np.asarray(atp, dtype=np.float64)
    if mean_daily.shape != atp.shape:
        raise ValueError(f"mean_daily has shape {mean_daily.shape} but atp has {atp.shape}")
    total_mean, total_var = over_days(mean_daily, p90_daily, lead_time_days, p50_daily)
    prob = prob_at_least(total_mean, total_var, atp, below, exact)
    with np.errstate(divide="ignore", invalid="ignore"):
        days = np.where(mean_daily > 0, np.maximum(atp, 0.0) / mean_daily, np.inf)
    return StockoutRisk(prob, days, float(lead_time_days))


@dataclass
class MonitorUpdate:
    """What one :meth:`StockoutMonitor.update` decided: indices and SKUs to publish or clear.

    >>> m = StockoutMonitor(threshold=0.5)
    >>> m.update(["a", "b"], [0.9, 0.2])
    MonitorUpdate(published=['a'], published_index=[0], cleared=[])
    >>> m.update(["a", "b"], [0.1, 0.2]).cleared  # a's episode is over
    ['a']
    """

    published: list[str] = field(default_factory=list)
    published_index: list[int] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


class StockoutMonitor:
    """Threshold-and-hysteresis publisher state, one float per SKU under alert.

    Rules: publish when ``p >= threshold`` and the SKU is not under alert; while under alert,
    publish again only when ``|p - last published p| >= min_change``; clear the alert when
    ``p < threshold - hysteresis``.

    >>> m = StockoutMonitor(threshold=0.6, min_change=0.1, hysteresis=0.1)
    >>> [m.update(["x"], [p]).published for p in (0.65, 0.7, 0.8, 0.55, 0.45, 0.7)]
    [['x'], [], ['x'], ['x'], [], ['x']]
    """

    def __init__(self, threshold: float = 0.5, min_change: float = 0.1, hysteresis: float = 0.05):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if min_change <= 0 or hysteresis < 0:
            raise ValueError("min_change must be > 0 and hysteresis >= 0")
        self.threshold = threshold
        self.min_change = min_change
        self.hysteresis = hysteresis
        self._last: dict[str, float] = {}  # SKU -> last published probability (under alert)
        self._changed: dict[str, float | None] = {}  # since take_changes(): None = cleared

    def update(self, skus: list[str], probabilities) -> MonitorUpdate:
        """Feed current probabilities for ``skus``; returns what to publish and what cleared."""
        probs = np.asarray(probabilities, dtype=np.float64)
        if len(skus) != len(probs):
            raise ValueError(f"{len(skus)} SKUs but {len(probs)} probabilities")
        out = MonitorUpdate()
        # Vectorised pre-filter: only SKUs at risk or already under alert need a look.
        candidates = np.flatnonzero(probs >= self.threshold - self.hysteresis)
        active = self._last
        if active:
            extra = [i for i, s in enumerate(skus) if s in active]
            candidates = np.union1d(candidates, np.asarray(extra, dtype=np.int64))
        for i in candidates.tolist():
            sku, p = skus[i], float(probs[i])
            last = active.get(sku)
            if last is None:
                if p >= self.threshold:
                    active[sku] = self._changed[sku] = p
                    out.published.append(sku)
                    out.published_index.append(i)
            elif p < self.threshold - self.hysteresis:
                del active[sku]
                self._changed[sku] = None
                out.cleared.append(sku)
            elif abs(p - last) >= self.min_change:
                active[sku] = self._changed[sku] = p
                out.published.append(sku)
                out.published_index.append(i)
        return out

    @property
    def alerted(self) -> KeysView[str]:
        """The SKUs under alert, as a live view (for a membership test per state change)."""
        return self._last.keys()

    @property
    def quiet_below(self) -> float:
        """A probability under which :meth:`update` leaves a SKU not under alert alone: its
        exact value is not needed there."""
        return self.threshold - self.hysteresis

    def under_alert_mask(self, skus: list[str]) -> np.ndarray | None:
        """Which of ``skus`` are under alert (their probability is needed whatever it is);
        None when none is."""
        active = self._last
        if not active:
            return None
        return np.fromiter((s in active for s in skus), dtype=bool, count=len(skus))

    def take_changes(self) -> dict[str, float | None]:
        """SKUs whose alert state changed since the last call: the probability published, or
        None where the alert cleared (what the gateway persists with the transaction)."""
        changed, self._changed = self._changed, {}
        return changed

    def restore(self, under_alert: dict[str, float]) -> None:
        """Resume exactly the alerts published before (a restart, a rolled-back transaction):
        the SKUs under alert with their last published probability, no others.

        >>> m = StockoutMonitor(threshold=0.5, min_change=0.2)
        >>> m.restore({"x": 0.6})
        >>> m.update(["x"], [0.7]).published  # the same episode, too small a move to repeat
        []
        """
        self._last = dict(under_alert)
        self._changed = {}

    def under_alert(self) -> dict[str, float]:
        """SKUs currently under alert with their last published probability."""
        return dict(self._last)
