"""A gateway decision policy driven by day-ahead demand forecasts (the demo's edge brain).

For every SKU whose stock changed, it takes that day's forecast (daily mean and P90 over the
lead time, from the bundle's ONNX model corrected by River), computes the probability of running
out within the lead time with the edge's own ``stockout_risk``, and lets the edge's
``StockoutMonitor`` decide what to publish (threshold with hysteresis, so a SKU hovering at the
threshold does not flood the topic). ATP falling to zero is always a stock-out alert; ledger
conflicts pass through as conflict messages.

>>> import numpy as np
>>> fc = DailyForecasts(["A"], np.datetime64("2024-01-01"), np.array([[[2.0, 2.0]]]),
...                     np.array([[[4.0, 4.0]]]))
>>> fc.lookup("A", "2024-01-02T10:00:00+00:00")
(2.0, 4.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from edge_runtime.decisions import Cause, RulePolicy
from edge_runtime.messages import Message, StockoutAlert
from edge_runtime.stock import Conflict, StockState
from edge_runtime.stockout import StockoutMonitor, stockout_risk

MAX_EXPECTED_DAYS = 365.0


@dataclass
class DailyForecasts:
    """Forecasts made at each day's close: ``mean[i, d, h]`` for SKU ``i``, close day
    ``first_close + d``, horizon ``h + 1``; events on a day use the previous close's forecast
    (events on ``first_close`` itself have none and get no forecast-driven decision)."""

    skus: list[str]
    first_close: np.datetime64
    mean: np.ndarray
    p90: np.ndarray

    def __post_init__(self) -> None:
        self._index = {s: i for i, s in enumerate(self.skus)}

    def lookup(self, sku: str, event_time: str, days: int = 1) -> tuple[float, float] | None:
        """Mean and P90 per day over the next ``days`` days for an event at ``event_time``."""
        i = self._index.get(sku)
        if i is None:
            return None
        d = int((np.datetime64(event_time[:10], "D") - self.first_close).astype(int)) - 1
        if d < 0:
            return None  # no forecast was made before this day: no look-ahead
        d = min(d, self.mean.shape[1] - 1)
        h = max(1, min(days, self.mean.shape[2]))
        return float(self.mean[i, d, :h].mean()), float(self.p90[i, d, :h].mean())


class ForecastDecisionPolicy:
    """Stock-out alerts from forecast risk (see the module docstring); a ``DecisionPolicy``.

    >>> ForecastDecisionPolicy("S1", None, "7", lead_time_days=2).version
    'shelfcast-7'
    """

    def __init__(
        self,
        store_id: str,
        forecasts: DailyForecasts | None,
        model_version: str,
        lead_time_days: int = 2,
        threshold: float = 0.5,
    ):
        self.store_id = store_id
        self.forecasts = forecasts
        self.version = f"shelfcast-{model_version}"
        self.lead_time_days = lead_time_days
        self.monitor = StockoutMonitor(threshold=threshold)
        self._rules = RulePolicy(store_id)  # conflicts only

    def prime(self, states: Iterable[StockState]) -> None:
        """Nothing to restore: the monitor starts empty."""

    def decide(
        self,
        states: Sequence[StockState],
        causes: Mapping[str, Cause],
        conflicts: Sequence[Conflict],
    ) -> list[Message]:
        rows = []
        for s in states:
            cause = causes.get(s.sku)
            when = cause.event_time if cause else s.last_event_time
            fc = self.forecasts.lookup(s.sku, when, self.lead_time_days) if when else None
            if fc is not None:
                rows.append((s, cause, when, *fc))
        out: list[Message] = []
        if rows:
            mean = np.array([r[3] for r in rows])
            p90 = np.array([r[4] for r in rows])
            atp = np.array([float(r[0].available) for r in rows])
            risk = stockout_risk(mean, p90, atp, self.lead_time_days)
            update = self.monitor.update([r[0].sku for r in rows], risk.probability)
            for i in update.published_index:
                out.append(self._alert(rows[i], risk.probability[i], risk.expected_days[i]))
        out.extend(self._rules.decide([], {}, conflicts))
        return out

    def _alert(self, row, prob: float, days: float) -> StockoutAlert:
        s, cause, when, mean, p90 = row
        at = datetime.fromisoformat(when)
        # Beyond a year the expected time says nothing (and may overflow a datetime).
        expected = at + timedelta(days=float(days)) if days <= MAX_EXPECTED_DAYS else None
        return StockoutAlert(
            store_id=self.store_id,
            sku=s.sku,
            event_time=at,
            cause_event_id=cause.event_id if cause else None,
            model_version=self.version,
            probability=float(np.clip(np.nan_to_num(prob, nan=1.0), 0.0, 1.0)),
            horizon_hours=24.0 * self.lead_time_days,
            expected_stockout_time=expected,
            atp=s.available,
            on_hand=s.on_hand,
            reserved=s.reserved,
            confidence=s.confidence,
            reason_codes=["ATP_ZERO"] if s.available <= 0 else ["FORECAST_RISK"],
            evidence={"forecast_mean_daily": round(mean, 3), "forecast_p90_daily": round(p90, 3)},
        )
