"""Phantom inventory: the ledger says in stock, but sales stopped for implausibly long.

For every SKU with ``on_hand > 0`` the detector asks how likely it is to see *no* sale for the
time since the SKU's last sale, given the demand forecast: ``P(zero sales in d days)`` under the
negative-binomial demand of :mod:`edge_runtime.forecast.demand_distribution`. Below ``alpha`` the units are
probably not really on the shelf (misplaced, stolen, wrong count): alert ``phantom`` with reason
``NO_SALES_IMPLAUSIBLE_FOR_FORECAST`` and the evidence (days silent, forecast, probability).

Demand forecasts are in units while silence is about *sales*: a SKU bought in dozens sells less
often than its unit forecast suggests. The detector learns each SKU's lot size (units per sale:
mean and variance) from the sales it sees and turns the unit forecast into one of sales per day:
units are a compound sum of ``N`` lots ``L``, so ``E[N] = E[U] / E[L]`` and
``Var[N] = (Var[U] - E[N] Var[L]) / E[L]**2`` (never below Poisson's ``E[N]``).

A SKU alerts once per silent spell; a sale or a cycle count re-arms it. Checks are vectorised over
all SKUs (one numpy pass for a whole store).

>>> import numpy as np
>>> d = PhantomDetector(alpha=0.01)
>>> d.sale("A", 0.0); d.sale("B", 0.0)
>>> alerts = d.check(3 * 86400.0, ["A", "B"], on_hand=np.array([10.0, 10.0]),
...                  mean_daily=np.array([4.0, 0.2]), p90_daily=np.array([7.0, 1.0]))
>>> [(a.sku, a.reason_codes) for a in alerts]
[('A', ('NO_SALES_IMPLAUSIBLE_FOR_FORECAST',))]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge_runtime.forecast.demand_distribution import daily_sigma, prob_zero
from edge_runtime.messages import ReasonCode
from edge_runtime.watch.anomaly_scores import MAX_BOOST
from edge_runtime.watch.shrink import ShrinkAlert

if TYPE_CHECKING:
    from edge_runtime.watch.anomaly_scores import AnomalyScores

DAY_S = 86400.0


class PhantomDetector:
    """Zero-sales-for-too-long detector (see the module docstring for the rule).

    >>> d = PhantomDetector()
    >>> d.sale("A", 0.0)
    >>> d.silent_days(2 * 86400.0, ["A"]).tolist()
    [2.0]
    >>> d.counted("A", 86400.0)  # a count confirmed the stock: the silence restarts
    >>> d.silent_days(2 * 86400.0, ["A"]).tolist()
    [1.0]
    """

    def __init__(self, alpha: float = 0.001, min_silent_days: float = 0.5):
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.alpha = alpha
        self.min_silent_days = min_silent_days
        self._last_sale: dict[str, float] = {}
        self._lots: dict[str, tuple[int, float, float]] = {}  # SKU -> lot size n, mean, M2
        self._alerted: set[str] = set()
        self._started: float | None = None

    def fresh(self) -> PhantomDetector:
        """A detector with the same settings and no sales seen (what a restart starts with)."""
        return PhantomDetector(self.alpha, self.min_silent_days)

    def sale(self, sku: str, t: float, qty: float = 1.0) -> None:
        """A sale of ``qty`` units of ``sku`` at ``t`` (POSIX s): the shelf is real, re-arm it."""
        if t >= self._last_sale.get(sku, -np.inf):
            self._last_sale[sku] = t
        n, mean, m2 = self._lots.get(sku, (0, 0.0, 0.0))
        n += 1
        delta = qty - mean
        mean += delta / n
        self._lots[sku] = (n, mean, m2 + delta * (qty - mean))
        self._alerted.discard(sku)

    def counted(self, sku: str, t: float) -> None:
        """A cycle count confirmed the stock: the silent spell restarts from ``t``."""
        if t >= self._last_sale.get(sku, -np.inf):
            self._last_sale[sku] = t
        self._alerted.discard(sku)

    def lot_sizes(self, skus: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of units per sale seen so far (1 and 0 for a SKU not yet sold)."""
        lots = self._lots
        stats = [lots.get(s, (1, 1.0, 0.0)) for s in skus]
        mean = np.fromiter((max(m, 1.0) for _, m, _ in stats), np.float64, len(skus))
        var = np.fromiter((m2 / n for n, _, m2 in stats), np.float64, len(skus))
        return mean, var

    def sales_per_day(
        self, skus: list[str], mean_daily: np.ndarray, p90_daily: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the number of sales per day implied by the unit forecast."""
        lot_mean, lot_var = self.lot_sizes(skus)
        mean_daily = np.asarray(mean_daily, dtype=np.float64)
        var_units = daily_sigma(mean_daily, p90_daily) ** 2
        n_mean = mean_daily / lot_mean
        n_var = np.maximum((var_units - n_mean * lot_var) / lot_mean**2, n_mean)
        return n_mean, n_var

    def silent_days(self, now: float, skus: list[str]) -> np.ndarray:
        """Days since each SKU's last sale (since monitoring started when never seen)."""
        if self._started is None:
            self._started = now
        start = self._started
        last = np.fromiter((self._last_sale.get(s, start) for s in skus), np.float64, len(skus))
        return np.maximum(now - last, 0.0) / DAY_S

    def check(
        self,
        now: float,
        skus: list[str],
        on_hand: np.ndarray,
        mean_daily: np.ndarray,
        p90_daily: np.ndarray,
        anomaly: AnomalyScores | None = None,
    ) -> list[ShrinkAlert]:
        """Alerts for SKUs in stock whose silence is less likely than ``alpha``, times the
        SKU's weight from the bundle's anomaly model when its scores are given
        (``edge_runtime.watch.anomaly_scores``)."""
        days = self.silent_days(now, skus)
        n_mean, n_var = self.sales_per_day(skus, mean_daily, p90_daily)
        p0 = prob_zero(n_mean * days, n_var * days)
        # The model's weight is at most 1 + MAX_BOOST: only SKUs within that bound can alert,
        # and only theirs are asked for (the model scores a SKU when first asked).
        near = (np.asarray(on_hand) > 0) & (days >= self.min_silent_days)
        near &= p0 < self.alpha * (1.0 + MAX_BOOST)
        # A SKU already alerted stays silent until it sells or is counted: not asked about
        # (the anomaly model would score it at every close for nothing).
        alerted = self._alerted
        if alerted and near.any():
            at = np.flatnonzero(near)
            near[at[np.fromiter((skus[i] in alerted for i in at.tolist()), bool, len(at))]] = False
        weight = np.ones(len(skus))
        if anomaly is not None and near.any():
            weight[near] = anomaly.weights([skus[i] for i in np.flatnonzero(near).tolist()])
        hit = near & (p0 < self.alpha * weight)
        alerts = []
        for i in np.flatnonzero(hit).tolist():
            sku = skus[i]
            if sku in self._alerted:
                continue
            self._alerted.add(sku)
            evidence = {
                "silent_days": round(float(days[i]), 3),
                "on_hand": float(on_hand[i]),
                "forecast_mean_daily": float(mean_daily[i]),
                "forecast_p90_daily": float(p90_daily[i]),
                "forecast_sales_per_day": round(float(n_mean[i]), 4),
                "p_zero_sales": float(p0[i]),
                "alpha": self.alpha,
            }
            reasons: tuple[str, ...] = (ReasonCode.NO_SALES_IMPLAUSIBLE_FOR_FORECAST,)
            if anomaly is not None:
                more, flagged = anomaly.evidence(sku)
                evidence |= more
                reasons += flagged
            score = float(1.0 - p0[i] / weight[i])  # the model's doubt makes the silence count more
            alerts.append(ShrinkAlert("phantom", sku, now, reasons, evidence, score))
        return alerts
