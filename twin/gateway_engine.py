"""The gateway's own forecast and decision objects, driven day by day by the twin.

Nothing here forecasts or decides: it feeds the twin's store into the objects a store gateway
runs and reads their answers, so every twin figure is the gateway's figure.

- :class:`EngineDecisions` holds the gateway's decision policy
  (``edge_runtime.decide.forecast_policy.ForecastDecisionPolicy``: order-up-to with packs, capacity,
  the marginal buffer or ``z`` sigma, and the open-order rule closed by receipts). On a review
  day it decides every SKU on the twin's stock with a ``DailyForecasts`` table, and the
  replenishment triggers it publishes are the twin's orders.
- :class:`GatewayPolicy` is shelfcast in the twin: the gateway's streaming daily sales
  (``edge_runtime.forecast.daily_sales.DailySales``) take the day's sales and receipts as events; at each
  day's close the SKUs whose shelf closed empty are censored (``feature_store.censored_demand``,
  the gateway's one rule), the day close (``edge_runtime.decide.day_close.DayCloseModel``: one ONNX
  call, the River correction, the marginal buffer) learns and re-scores, and
  :class:`EngineDecisions` decides with that table. With a ``refresh``
  (``twin.model_refresh.ModelRefresh``) the centre's new bundle is swapped in every so many
  days as a gateway swaps one: a new day-close model keeping River's correction and the sales
  series, re-scored at once.

>>> GatewayPolicy("var/bundle").name
'gateway'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.decide.forecast_policy import (
    DailyForecasts,
    DecisionSettings,
    ForecastDecisionPolicy,
)
from edge_runtime.decide.stockout import stockout_risk
from edge_runtime.forecast.daily_sales import HISTORY_DAYS, DailySales, SaleEvent
from edge_runtime.messages import ReplenishmentAlert
from edge_runtime.store.stock import StockState
from feature_store.censored_demand import shelf_empty
from twin.model_refresh import ModelRefresh
from twin.store import DemandPanel, StoreConfig, StoreState, sku_parameters


def _at(day: np.datetime64) -> str:
    """The start of a store day as an event time: when a close's decisions are made."""
    return f"{np.datetime64(day, 'D')}T00:00:00+00:00"


@dataclass(frozen=True)
class _Receipt:
    """What the policy reads of a receipt event (``edge_runtime.store.events.Event`` has these)."""

    sku: str
    qty: float
    type: str = "receipt"
    order_id: str | None = None


class EngineDecisions:
    """The gateway's ``ForecastDecisionPolicy`` deciding the twin's orders.

    >>> import numpy as np
    >>> d = EngineDecisions("s", ["a"], StoreConfig(lead_time=2, review_period=7),
    ...                     np.ones(1), np.full(1, 99.0), z=1.645)
    >>> fc = DailyForecasts(["a"], np.datetime64("2024-01-01"), np.full((1, 1, 9), 2.0),
    ...                     np.full((1, 1, 9), 4.0))
    >>> d.orders(fc, np.array([3.0]), np.zeros(1)).tolist()  # 2 x 9 + 1.645 x 1.56 x 3 - 3
    [23.0]
    """

    def __init__(
        self,
        store_id: str,
        skus: list[str],
        config: StoreConfig,
        pack: np.ndarray,
        capacity: np.ndarray,
        z: float = 1.645,
    ):
        self.skus = skus
        self.settings = DecisionSettings(
            lead_time_days=max(float(config.lead_time), 1e-9),
            review_days=float(config.review_period),
            service_z=z,
        )
        items = {
            s: {"pack_size": float(p), "capacity": float(c)}
            for s, p, c in zip(skus, pack, capacity, strict=True)
        }
        self.policy = ForecastDecisionPolicy(
            store_id, None, "twin", settings=self.settings, items=items
        )

    @property
    def protection_days(self) -> int:
        """Days of forecast an order must cover (the gateway's lead time + review period)."""
        return self.settings.protection_days

    def orders(
        self, table: DailyForecasts, on_hand: np.ndarray, on_order: np.ndarray
    ) -> np.ndarray:
        """Units the gateway's replenishment triggers ask for, per SKU, at ``table``'s close.

        ``on_order`` is the twin's; the gateway knows its own from the triggers it sent."""
        self.policy.use(table, "twin")
        at = _at(table.last_close + 1)
        states = [_stock(s, float(q)) for s, q in zip(self.skus, on_hand, strict=True)]
        qty = np.zeros(len(self.skus))
        index = {s: i for i, s in enumerate(self.skus)}
        for msg in self.policy.review(states, {}, at):
            if isinstance(msg, ReplenishmentAlert):
                qty[index[msg.sku]] += msg.recommended_qty
        return qty

    def receive(self, arrived: np.ndarray) -> list[_Receipt]:
        """Receipts of the day's arrivals close their SKUs' open orders; returns them."""
        receipts = [
            _Receipt(self.skus[i], float(arrived[i])) for i in np.flatnonzero(arrived > 0).tolist()
        ]
        self.policy.receive(receipts)
        return receipts


def _stock(sku: str, on_hand: float) -> StockState:
    """The twin's stock of a SKU as the gateway's ledger would state it (nothing reserved)."""
    return StockState(
        sku=sku, on_hand=on_hand, reserved=0, safety_buffer=0, available=max(on_hand, 0.0),
        confidence=1.0, last_count_time=None, last_event_time=None, shrink=0, gain=0, sold=0,
        received=0, damaged=0, events=0,
    )  # fmt: skip


@dataclass
class GatewayPolicy:
    """shelfcast in the twin: the gateway's day close and decision policy (module docstring).

    ``buffer_every_days`` > 1 sizes the safety stock by the marginal buffer (the gateway's
    ``[model] buffer_every_days``), else ``z`` sigma. ``correction`` makes the River correction
    (default: the gateway's own ``LevelCorrection``).
    """

    bundle_path: str | Path
    buffer_every_days: float = 0.0
    z: float = 1.645
    correction: Callable[[], object] | None = None
    censored: bool = True  # False: an empty shelf's day learnt as what it sold (an ablation)
    refresh: ModelRefresh | None = None  # the centre's retraining every so many days
    name: str = "gateway"
    model_version: str = ""
    # day index -> (mean, p90) (n_skus, horizons) the decisions used after that day's close
    trace: dict = field(default_factory=dict, repr=False)

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None:
        """Load the bundle into a day close, and feed it the history before ``start``."""
        self._skus = [str(s) for s in panel.skus]
        pack, capacity, _ = sku_parameters(panel, start, config)
        self.decisions = EngineDecisions(panel.store_id, self._skus, config, pack, capacity, self.z)
        self._days = max(self.decisions.protection_days, config.lead_time, 1)
        self.model = self._day_close(self.bundle_path, self._correction())
        self._reported: list[tuple[np.ndarray, np.ndarray]] = []  # (sold, shelf empty) per day
        self.swaps: list[str] = []  # the bundles swapped in, in order
        self._panel = panel
        self._start = start
        self.sales = DailySales()
        self.table: DailyForecasts | None = None
        self._receipts: list[SaleEvent] = []
        self.trace = {}
        for t in range(max(0, start - HISTORY_DAYS), start):
            self.sales.observe(self._sale_events(t, panel.units[:, t]))

    def _correction(self) -> object | None:
        """A new River correction (None: the day close's default)."""
        return self.correction() if self.correction else None

    def _day_close(self, path: str | Path, correction: object | None):
        """The day-close model of the bundle at ``path`` (River's ``correction``, or a new one)."""
        from edge_runtime.decide.day_close import DayCloseModel
        from feature_store.spec import FEATURE_STORE_VERSION
        from models.bundle import load_bundle

        bundle = load_bundle(path, FEATURE_STORE_VERSION)
        self.model_version = bundle.model_version
        return DayCloseModel(bundle, forecast_days=self._days, correction=correction,
                             buffer_every_days=self.buffer_every_days)  # fmt: skip

    def _swap(self) -> None:
        """The centre's new bundle in use from this morning, as a gateway swaps one
        (``edge_runtime.decide.engine``): River's correction and the sales series kept, the last
        close re-scored at once. The twin's store orders on review days only, so the swap's own
        review places no order."""
        sold, empty = (np.array(a).T for a in zip(*self._reported, strict=True))
        path = self.refresh.bundle(self._panel, self._start, sold, empty)
        kept = self.model.correction if self.refresh.keep_correction else self._correction()
        self.model = self._day_close(path, kept)
        self.swaps.append(str(path))
        self.table = self.model.rescore(self.sales)

    def start_up(self) -> None:
        """Close the history's last day and re-score, as a gateway does at start-up, so that
        the first replayed morning has the table a running store would (``trace[start - 1]``)."""
        if self.sales.open_day is None:
            return  # nothing ever sold or arrived: no series to score
        first = self._panel.dates[self._start]
        self.sales.close_until(int(first.astype(np.int64)))
        self.table = self.model.rescore(self.sales)
        if self.table is not None:
            self.trace[self._start - 1] = self._panel_rows(self.table)

    def _sale_events(self, t: int, sold: np.ndarray) -> list[SaleEvent]:
        day = _at(self._panel.dates[t])
        daily = self._panel.price_daily
        events = []
        for i in np.flatnonzero(sold > 0).tolist():
            price = None if daily is None or not np.isfinite(daily[i, t]) else float(daily[i, t])
            events.append(SaleEvent(self._skus[i], "sale", float(sold[i]), day, price))
        return events

    def receive(self, arrived: np.ndarray) -> None:
        """Receipts close the policy's open orders and reach the sales series as events."""
        self._receipts = [
            SaleEvent(r.sku, "receipt", r.qty, "") for r in self.decisions.receive(arrived)
        ]

    def observe(self, state: StoreState) -> None:
        """The day's events, then its close: censored SKUs, learn, re-score."""
        shelves = shelf_empty(state.on_hand)
        if self.refresh is not None:
            if self.refresh.due(state.day - self._start):
                self._swap()
            self._reported.append((state.sales[:, -1].copy(), shelves))  # the centre's copy
        sales, day = self.sales, self._panel.dates[state.day]
        at = _at(day)
        events = [SaleEvent(e.sku, e.type, e.qty, at) for e in self._receipts]
        events += self._sale_events(state.day, state.sales[:, -1])
        self._receipts = []
        sales.observe(events)
        if sales.open_day is None:
            return  # nothing ever sold or arrived: no series to score
        today = int(day.astype(np.int64))
        closed = sales.close_until(today) if sales.open_day < day else []  # no sale yesterday
        empty = {s for s, e in zip(self._skus, shelves.tolist(), strict=True) if e}
        empty = empty if self.censored else set()
        closed += sales.close_until(today + 1, empty)
        self.model.learn(closed)
        self.table = self.model.rescore(sales)
        if self.table is not None:
            self.trace[state.day] = self._panel_rows(self.table)

    def _panel_rows(self, table: DailyForecasts) -> tuple[np.ndarray, np.ndarray]:
        """The table's mean and P90 (SKUs x horizons) in panel order, zero for a SKU it does
        not have yet (one that never sold: the gateway decides it on its stock alone)."""
        mean = np.zeros((len(self._skus), table.mean.shape[2]))
        p90 = np.zeros_like(mean)
        index = {s: i for i, s in enumerate(table.skus)}
        rows = [(k, index[s]) for k, s in enumerate(self._skus) if s in index]
        if rows:
            k, i = np.array(rows).T
            mean[k], p90[k] = table.mean[i, -1], table.p90[i, -1]
        return mean, p90

    def order(self, state: StoreState) -> np.ndarray:
        if self.table is None:
            return np.zeros(len(self._skus))
        return self.decisions.orders(self.table, state.on_hand, state.on_order)

    def stockout_probability(
        self, state: StoreState, arrivals: np.ndarray, horizon: int
    ) -> np.ndarray:
        """P(the shelf empties within ``horizon`` days) from today's table, counting orders due
        in that window as stock (optimistic about their timing)."""
        if self.table is None:
            return shelf_empty(state.on_hand).astype(np.float64)
        stock = state.on_hand + arrivals[:, :horizon].sum(axis=1)
        mean, p90 = self.trace[state.day]
        h = max(1, min(horizon, mean.shape[1]))
        return stockout_risk(
            mean[:, :h].mean(axis=1), p90[:, :h].mean(axis=1), stock, horizon
        ).probability
