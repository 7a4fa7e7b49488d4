"""The gateway's forecast-driven decision policy: stock-out alerts and replenishment triggers.

Forecasts come as a :class:`DailyForecasts` table (daily mean and P90 per SKU and horizon, made
at a day's close: by the gateway's own re-score, ``edge_runtime.decide.day_close``, or handed in
precomputed by a replay). For every SKU whose stock changed, and for every SKU at a day's close:

- stock-out: the probability of running out within the lead time on current
  available-to-promise (``stockout.stockout_risk``), published through a ``StockoutMonitor``
  (threshold with hysteresis, so a SKU hovering at the threshold does not flood the topic); ATP
  at zero has probability 1, so it is always published (reason ``ATP_ZERO``). A SKU the table
  has no forecast for yet (a new gateway before its first day's close, a new SKU, an event
  dated before the table's close) is decided as the rules decide: probability 1 at ATP zero,
  0 otherwise, through the same monitor, so a stock-out is never silent for want of history;
- replenishment: order-up-to over lead time + review period with safety stock, pack size, MOQ
  and capacity (``replenishment.Replenisher``); the safety stock is the SKU's marginal buffer
  when the table carries one (``DailyForecasts.buffer``: the single-day demand exceeded once
  every ``buffer_every_days`` days, ``edge_runtime.decide.service_level``), else ``z`` times the
  forecast's spread; one trigger per SKU while its order is open, and a receipt of the SKU (or
  of the order id) closes the order;
- ledger conflicts pass through as conflict messages.

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
from typing import Any

import numpy as np

from edge_runtime.decide.decisions import Cause, RulePolicy, decision_fields
from edge_runtime.decide.quiet_levels import QuietLevels
from edge_runtime.decide.replenishment import Replenisher
from edge_runtime.decide.review_rows import Bare, Rows, out_probability, unit
from edge_runtime.decide.stockout import StockoutMonitor, stockout_risk
from edge_runtime.forecast.demand_distribution import daily_sigma, floored_forecast
from edge_runtime.messages import Message, ReasonCode, StockoutAlert
from edge_runtime.store.state_columns import StateColumns
from edge_runtime.store.stock import Conflict, StockState

MAX_EXPECTED_DAYS = 365.0


@dataclass
class DailyForecasts:
    """Forecasts made at each day's close: ``mean[i, d, h]`` for SKU ``i``, close day
    ``first_close + d``, horizon ``h + 1``; events on a day use the previous close's forecast
    (events on ``first_close`` itself have none: the policy decides them on ATP alone).

    >>> import numpy as np
    >>> fc = DailyForecasts(["A"], np.datetime64("2024-01-01"), np.array([[[2.0, 4.0]]]),
    ...                     np.array([[[4.0, 6.0]]]))  # one close, horizons 1 and 2
    >>> fc.last_close, fc.lookup("A", "2024-01-02T10:00:00+00:00", days=2)  # daily over two days
    (np.datetime64('2024-01-01'), (3.0, 5.0))
    >>> fc.lookup("A", "2024-01-01T10:00:00+00:00"), fc.lookup("B", "2024-01-02")  # none made
    (None, None)
    """

    skus: list[str]
    first_close: np.datetime64
    mean: np.ndarray
    p90: np.ndarray
    buffer: np.ndarray | None = None  # per SKU: the marginal safety buffer in units, or none

    def __post_init__(self) -> None:
        self.rows = {s: i for i, s in enumerate(self.skus)}  # SKU -> its row
        # Why precomputed: every event's decision looks up its SKU (twice); a numpy mean over a
        # 1-7 element slice and a date parse per lookup were ~20 us of the per-event cost.
        # [i, d, h - 1] is the daily average over the first h horizons (the tables are not
        # changed after they are made).
        h = np.arange(1, self.mean.shape[2] + 1)
        self._mean_avg = np.cumsum(self.mean, axis=2) / h
        self._p90_avg = np.cumsum(self.p90, axis=2) / h
        self._day_index: dict[str, int] = {}  # event date text -> close-day index - 1

    @property
    def last_close(self) -> np.datetime64:
        return self.first_close + (self.mean.shape[1] - 1)

    def rows_of(self, skus: list[str]) -> np.ndarray:
        """Row index of each of ``skus`` (all must be in the table)."""
        index = self.rows
        return np.fromiter((index[s] for s in skus), dtype=np.int64, count=len(skus))

    def lookup(self, sku: str, event_time: str, days: int = 1) -> tuple[float, float] | None:
        """Mean and P90 per day over the next ``days`` days for an event at ``event_time``."""
        i = self.rows.get(sku)
        if i is None:
            return None
        d = self._day(event_time)
        if d < 0:
            return None  # no forecast was made before this day: no look-ahead
        d = min(d, self.mean.shape[1] - 1)
        h = max(1, min(days, self.mean.shape[2]))
        return float(self._mean_avg[i, d, h - 1]), float(self._p90_avg[i, d, h - 1])

    def lookup_many(
        self,
        skus: Sequence[str],
        event_times: Sequence[str | None] | str,
        days: int,
        rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``lookup`` for many SKUs at once: ``(found, table)`` where ``found`` indexes the
        SKUs that have a forecast and ``table[k]`` is ``(mean, p90)`` of ``skus[found[k]]``
        (the very values ``lookup`` returns). ``event_times``: one per SKU (a None one has no
        forecast), or one ISO time for all (a day's close).

        Why: a store day's close decides every SKU, and a Python lookup per SKU was most of
        the cost of building the decision rows. ``rows``: ``skus``' rows (:meth:`row_index`)
        when the caller has them already."""
        day = self._day
        if rows is None:
            rows = self.row_index(skus)
        if isinstance(event_times, str):
            close = np.full(len(skus), day(event_times), dtype=np.int64)
        else:
            close = np.fromiter(
                (day(t) if t else -1 for t in event_times), dtype=np.int64, count=len(skus)
            )
        found = np.flatnonzero((rows >= 0) & (close >= 0))
        table = np.empty((len(found), 2), dtype=np.float64)
        table[:, 0], table[:, 1] = self.averages(rows[found], close[found], days)
        return found, table

    def row_index(self, skus: Sequence[str]) -> np.ndarray:
        """Row index of each of ``skus``, -1 for one the table has no forecast of."""
        index = self.rows
        return np.fromiter((index.get(s, -1) for s in skus), dtype=np.int64, count=len(skus))

    def averages(self, rows, close, days: int) -> tuple[np.ndarray, np.ndarray]:
        """Daily mean and P90 over the next ``days`` days of ``rows`` (indexes, or a slice) as
        forecast at close-day indexes ``close`` (at most the last close's)."""
        close = np.minimum(close, self.mean.shape[1] - 1)
        h = max(1, min(days, self.mean.shape[2])) - 1
        return self._mean_avg[rows, close, h], self._p90_avg[rows, close, h]

    def _day(self, event_time: str) -> int:
        text = event_time[:10]
        d = self._day_index.get(text)
        if d is None:
            if len(self._day_index) > 4096:  # bounded: event dates move forward
                self._day_index.clear()
            d = int((np.datetime64(text, "D") - self.first_close).astype(int)) - 1
            self._day_index[text] = d
        return d


@dataclass(frozen=True)
class DecisionSettings:
    """The numbers the policy decides with (``[model]`` of the gateway's configuration).

    >>> DecisionSettings().protection_days
    3
    """

    lead_time_days: float = 2.0
    review_days: float = 1.0
    service_z: float = 1.645
    threshold: float = 0.5
    min_change: float = 0.1
    hysteresis: float = 0.05

    @property
    def protection_days(self) -> int:
        """Whole days the order-up-to level must cover (lead time + review period)."""
        return max(1, int(np.ceil(self.lead_time_days + self.review_days)))


class ForecastDecisionPolicy:
    """Stock-out alerts and replenishment triggers from forecasts; a ``DecisionPolicy``.

    ``items`` is per-SKU master data for ordering (``pack_size``, ``moq``, ``capacity``).
    ``lead_time_days`` and ``threshold`` are shorthands for a ``DecisionSettings``.

    >>> ForecastDecisionPolicy("S1", None, "7").version
    '7'
    """

    uses_forecasts = True

    def __init__(
        self,
        store_id: str,
        forecasts: DailyForecasts | None,
        model_version: str,
        lead_time_days: float = 2.0,
        threshold: float = 0.5,
        settings: DecisionSettings | None = None,
        items: dict[str, dict[str, float]] | None = None,
    ):
        self.store_id = store_id
        self.forecasts = forecasts
        self.version = str(model_version)
        # ``settings`` (the gateway's [model] section) wins over the two shorthand arguments.
        self.settings = s = settings or DecisionSettings(lead_time_days, threshold=threshold)
        self.monitor = StockoutMonitor(s.threshold, s.min_change, s.hysteresis)
        self.replenisher = Replenisher(s.lead_time_days, s.review_days, s.service_z, items)
        self._rules = RulePolicy(store_id)  # conflicts only
        self._quiet: QuietLevels | None = None  # of ``self.forecasts``, made on first use

    def use(self, forecasts: DailyForecasts | None, model_version: str) -> None:
        """Decide with a new forecast table from now on (a day's close, a bundle swap)."""
        self.forecasts = forecasts
        self.version = str(model_version)

    def prime(self, states: Iterable[StockState]) -> None:
        """After a restart: SKUs already at risk count as alerted (no repeated alerts)."""
        rows, bare = self._rows(list(states), {}, None)
        if rows is not None:
            risk = self._risk(rows)
            self.monitor.update(rows.states.skus, risk.probability)
        if bare:
            self.monitor.update(bare.states.skus, out_probability(bare))

    def restore_alerts(self, under_alert: dict[str, float]) -> None:
        """Resume the stock-out episodes published before a restart (``StockoutMonitor.restore``):
        what ``prime`` guessed from today's forecasts gives way to what was actually sent."""
        self.monitor.restore(under_alert)

    def take_episode_changes(self) -> dict[str, float | None]:
        """Stock-out episodes opened, updated (probability) or closed (None) since the last
        call: the gateway stores them with the alerts (``edge_runtime.store.alert_episode_table``)."""
        return self.monitor.take_changes()

    def take_order_changes(self) -> dict[str, tuple[float, str | None] | None]:
        """Open orders opened, changed or closed (None) since the last call
        (``Replenisher.take_changes``): the gateway stores them with the triggers."""
        return self.replenisher.take_changes()

    def restore_orders(self, orders: dict[str, tuple[float, str | None]]) -> None:
        """The open orders as committed (``edge_runtime.store.open_orders``), after a restart."""
        self.replenisher.restore(orders)

    def receive(self, events: Iterable) -> None:
        """Receipts close their SKU's open order (``Replenisher.receive``)."""
        for e in events:
            if e.type == "receipt":
                self.replenisher.receive(e.sku, float(e.qty), e.order_id)

    def deciding(self, steps: list[tuple[Any, Any]], safety_buffer: int) -> list[tuple[Any, Any]]:
        """The ``(event, ledger state)`` steps of one round that may decide something: a SKU
        not under alert whose new ATP is at or above its quiet levels is left out
        (``edge_runtime.decide.quiet_levels``); deciding it would publish and change nothing."""
        table = self.forecasts
        if table is None:
            return steps
        levels = self._quiet
        if levels is None or levels.table is not table or levels.settings is not self.settings:
            levels = self._quiet = QuietLevels(table, self.settings)
        alerted, orders, quiet = self.monitor.alerted, self.replenisher.open_orders, levels.quiet
        return [
            (e, s)
            for e, s in steps
            if e.sku in alerted
            or not quiet(e.sku, s.available(safety_buffer), e.event_time, e.sku in orders)
        ]

    def decide(
        self,
        states: Sequence[StockState],
        causes: Mapping[str, Cause],
        conflicts: Sequence[Conflict],
    ) -> list[Message]:
        out = self.review(states, causes)
        out.extend(self._rules.decide([], {}, conflicts))
        return out

    def review(
        self,
        states: Sequence[StockState],
        causes: Mapping[str, Cause],
        at: str | None = None,
        occasion: str | None = None,
    ) -> list[Message]:
        """Stock-out and replenishment decisions for ``states`` at ``at`` (ISO time; else each SKU's
        cause / last event), each built with its decision id (epoch: its cause, else the
        ``occasion``, ``close:<day>``, else its time); what ``decide`` and the day close run.
        ``states`` may be ``StateColumns``: a SKU's full state is then built only when one of its
        decisions is published (a close has few)."""
        rows, bare = self._rows(states, causes, at)
        out: list[Message] = []
        if rows is not None:
            risk = self._risk(rows)
            update = self.monitor.update(rows.states.skus, risk.probability)
            out += [
                self._alert(rows, i, risk.probability[i], risk.expected_days[i], occasion)
                for i in update.published_index
            ]
            out += self._orders(rows, occasion)
        if bare:
            update = self.monitor.update(bare.states.skus, out_probability(bare))
            out += [
                self._out_alert(bare.states[i], bare.causes[i], bare.when[i], occasion)
                for i in update.published_index
            ]
        return out

    def _rows(self, states, causes, at: str | None) -> tuple[Rows | None, Bare | None]:
        """The SKUs with a forecast (as ``Rows``) and those without one (decided on ATP)."""
        lead = max(1, int(np.ceil(self.settings.lead_time_days)))
        protect = self.settings.protection_days
        table = self.forecasts
        states = StateColumns.of_states(states)
        skus = states.skus
        got = causes.get
        cause_of = [got(sku) for sku in skus] if causes else [None] * len(states)
        if at:
            whens = [at] * len(states)
        else:
            whens = [
                c.event_time if c else states[i].last_event_time for i, c in enumerate(cause_of)
            ]
        if table is None or not states:
            return None, Bare(states, cause_of, whens)
        row_of = table.row_index(skus)  # looked up once: both horizons and the buffer use it
        found, lead_arr = table.lookup_many(skus, at or whens, lead, row_of)
        bare = None
        kept, kept_causes, kept_whens = states, cause_of, whens
        if len(found) < len(states):
            kept_mask = np.zeros(len(states), dtype=bool)
            kept_mask[found] = True
            out = np.flatnonzero(~kept_mask).tolist()
            bare = Bare(*_subset(states, cause_of, whens, out))
            kept, kept_causes, kept_whens = _subset(states, cause_of, whens, found.tolist())
        if not len(found):
            return None, bare
        kept_rows = row_of[found]
        _, protect_arr = table.lookup_many(kept.skus, at or kept_whens, protect, kept_rows)
        buffer = None
        if table.buffer is not None:
            buffer = table.buffer[kept_rows]
        rows = Rows(
            kept,
            kept_causes,
            kept_whens,
            *floored_forecast(lead_arr[:, 0], lead_arr[:, 1]),
            *floored_forecast(protect_arr[:, 0], protect_arr[:, 1]),
            buffer,
        )
        return rows, bare

    def _risk(self, rows: Rows):
        """The stock-out risk of ``rows``, exact where the monitor may act on it: a SKU under
        alert, or one whose probability may reach the monitor's ``quiet_below``."""
        monitor = self.monitor
        exact = monitor.under_alert_mask(rows.states.skus)
        atp = rows.states.available
        return stockout_risk(rows.mean, rows.p90, atp, self.settings.lead_time_days,
                             below=monitor.quiet_below, exact=exact)  # fmt: skip

    def _orders(self, rows: Rows, occasion: str | None = None) -> list[Message]:
        skus, atp = rows.states.skus, rows.states.available
        sigma = daily_sigma(rows.mean_protect, rows.p90_protect)
        open_orders = self.replenisher.open_orders
        on_order = np.array([open_orders[s].quantity if s in open_orders else 0.0 for s in skus])
        triggers = self.replenisher.review(
            skus, rows.mean_protect, sigma, atp, on_order, buffer=rows.buffer
        )
        at = {sku: i for i, sku in enumerate(skus)}
        protection_days = self.settings.protection_days
        safety_rule = "z_sigma" if rows.buffer is None else "marginal_buffer"
        out: list[Message] = []
        for t in triggers:
            i = at[t.sku]
            s, cause = rows.states[i], rows.causes[i]
            evidence = {
                "forecast_mean_daily": round(float(rows.mean_protect[i]), 3),
                "forecast_p90_daily": round(float(rows.p90_protect[i]), 3),
                "protection_days": protection_days,
                "safety_rule": safety_rule,
            }
            when = datetime.fromisoformat(rows.when[i])
            common = self._common("replenishment", s, cause, when, occasion)
            horizon = 24.0 * self.settings.lead_time_days
            out.append(t.to_message(evidence=evidence, horizon_hours=horizon, **common))
        return out

    def _common(
        self, kind: str, s: StockState, cause: Cause | None, at: datetime | None, occasion
    ) -> dict:
        return decision_fields(self.store_id, self.version, kind, s, cause, at, occasion)

    def _out_alert(
        self, s: StockState, cause: Cause | None, when: str | None, occasion: str | None = None
    ) -> StockoutAlert:
        """A stock-out without a forecast: ATP is zero now (what the rules policy says)."""
        at = datetime.fromisoformat(when) if when else None
        return StockoutAlert(
            sku=s.sku,
            probability=1.0,
            horizon_hours=0.0,
            reason_codes=[ReasonCode.ATP_ZERO] if s.on_hand > 0 else [ReasonCode.ON_HAND_ZERO],
            evidence={"forecast": "none yet"},
            **self._common("stockout", s, cause, at, occasion),
        )

    def _alert(
        self, rows: Rows, i: int, prob: float, days: float, occasion: str | None = None
    ) -> StockoutAlert:
        s, cause, when = rows.states[i], rows.causes[i], rows.when[i]
        at = datetime.fromisoformat(when)
        # Beyond a year the expected time says nothing (and may overflow a datetime).
        expected = at + timedelta(days=float(days)) if days <= MAX_EXPECTED_DAYS else None
        return StockoutAlert(
            sku=s.sku,
            probability=unit(prob),
            horizon_hours=24.0 * self.settings.lead_time_days,
            expected_stockout_time=expected,
            reason_codes=[ReasonCode.ATP_ZERO] if s.available <= 0 else [ReasonCode.FORECAST_RISK],
            evidence={
                "forecast_mean_daily": round(float(rows.mean[i]), 3),
                "forecast_p90_daily": round(float(rows.p90[i]), 3),
            },
            **self._common("stockout", s, cause, at, occasion),
        )


def _subset(states: StateColumns, causes: list, whens: list, index: list[int]):
    """The states, causes and times of the SKUs at ``index``, in that order."""
    return states.take(index), [causes[i] for i in index], [whens[i] for i in index]
