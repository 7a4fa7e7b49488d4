"""Per SKU, the available-to-promise from which a state change provably decides nothing.

The forecast policy decides every state change of a SKU (each sale): the stock-out risk, then
the order-up-to review. Between two closes a SKU's forecast is fixed, and both decisions are
monotone in ATP, so each has a level at or above which it cannot act:

- *stock-out*: a SKU not under alert publishes only when P(demand over the lead time >= ATP)
  reaches the threshold. Cantelli's bound (``demand_distribution.tail_bound``, which bounds the
  very negative binomial the policy evaluates) puts it under the threshold once
  ``ATP > m + sqrt(v (1 - c) / c)`` (``m``, ``v``: the lead time's mean and variance, as the
  bound floors them; ``c`` the threshold less a margin for rounding;
  ``demand_distribution.tail_bound_level``). A SKU under alert is
  never quiet: any probability may update or clear its episode.
- *replenishment*: a SKU with an open order gets no trigger whatever its ATP; one without gets
  one only when ``ATP < S`` (the order-up-to level; ``need = S - ATP``, packs, MOQ and capacity
  only lower a positive need's order).

:class:`QuietLevels` holds both levels for the events of the open day (the day after the
table's last close: earlier days use other forecasts and are always decided). The levels are
computed with the policy's own functions, so ``ATP >= order level`` is exactly ``need <= 0``.

>>> import numpy as np
>>> from edge_runtime.decide.forecast_policy import DailyForecasts, DecisionSettings
>>> t = DailyForecasts(["A"], np.datetime64("2026-01-05"), np.full((1, 1, 3), 2.0),
...                    np.full((1, 1, 3), 4.0))
>>> q = QuietLevels(t, DecisionSettings())
>>> q.open_date, [round(float(x), 2) for x in (q.stock[0], q.order[0])]
('2026-01-06', [6.21, 10.45])
>>> q.quiet("A", 13.0, "2026-01-06T10:00:00+00:00", False), q.quiet("A", 9.0, "2026-01-06", False)
(True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge_runtime.decide.replenishment import order_quantities, order_quantities_with_buffer
from edge_runtime.forecast.demand_distribution import (
    daily_sigma,
    floored_forecast,
    over_days,
    tail_bound_level,
)

if TYPE_CHECKING:  # the policy's module imports this one
    from edge_runtime.decide.forecast_policy import DailyForecasts, DecisionSettings

# Why a margin: the exact probability the policy computes may sit a rounding error above the
# bound's value; the level asks the bound to be this far under the threshold.
_MARGIN = 1e-6


class QuietLevels:
    """``stock[i]`` and ``order[i]`` (lists: read one at a time): the levels of SKU ``table.skus[i]`` (module docstring);
    :meth:`quiet` says whether a change to ``atp`` at ``event_time`` needs no decision.

    >>> import numpy as np
    >>> from edge_runtime.decide.forecast_policy import DailyForecasts, DecisionSettings
    >>> t = DailyForecasts(["A"], np.datetime64("2026-01-05"), np.full((1, 1, 3), 2.0),
    ...                    np.full((1, 1, 3), 4.0))
    >>> q = QuietLevels(t, DecisionSettings())
    >>> q.quiet("A", 8.0, "2026-01-06", order_open=False)  # below the order level: decide
    False
    >>> q.quiet("A", 8.0, "2026-01-06", order_open=True)  # ordered already, above the alert level
    True
    """

    def __init__(self, table: DailyForecasts, settings: DecisionSettings):
        self.table, self.settings = table, settings
        day = table.mean.shape[1] - 1  # what the open day's events look up (clamped)
        self.open_date = str(table.first_close + table.mean.shape[1])
        n = len(table.skus)
        lead = max(1, int(np.ceil(settings.lead_time_days)))
        mean, p90 = floored_forecast(*table.averages(slice(None), day, lead))
        total_mean, total_var = over_days(mean, p90, settings.lead_time_days)
        level = tail_bound_level(total_mean, total_var, settings.threshold - _MARGIN)
        self.stock = level.tolist()
        mean_p, p90_p = floored_forecast(
            *table.averages(slice(None), day, settings.protection_days)
        )
        limits = {"lead_time_days": settings.lead_time_days, "review_days": settings.review_days}
        if table.buffer is None:
            sigma = daily_sigma(mean_p, p90_p)
            plan = order_quantities(mean_p, sigma, np.zeros(n), z=settings.service_z, **limits)
        else:
            buffer = table.buffer[np.arange(n)]
            plan = order_quantities_with_buffer(mean_p, buffer, np.zeros(n), **limits)
        level = plan.order_up_to
        self.order = np.where(np.isnan(level), np.inf, level).tolist()
        self._index = table.rows

    def quiet(self, sku: str, atp: float, event_time: str, order_open: bool) -> bool:
        """True when a SKU not under alert, at ``atp`` after an event at ``event_time``, gets
        no stock-out alert and no order trigger (``order_open``: it has an open order)."""
        i = self._index.get(sku)
        if i is None or event_time[:10] < self.open_date or not atp > self.stock[i]:
            return False
        return order_open or atp >= self.order[i]
