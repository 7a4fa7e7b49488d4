"""Intraday stock-out warnings: P(a SKU's shelf empties within 4 hours, before closing).

The gateway keeps, per SKU, the hourly sales and stock-out flags of the last
:data:`~feature_store.intraday.WINDOW_DAYS` store days (today partly filled) and, once an hour
is complete, scores every SKU in stock with the bundle's ``stockout_4h`` ONNX model on the
features of :func:`feature_store.intraday.today_features`: the one definition training uses.

What it reads from the events (all by *event time*, whatever order they arrive in):

- sales, returns and voids (net units, as the day's sales series counts them) in their hour;
- availability: a ``shelf_units`` reading of 0 means the shelf is empty from its time on, above 0
  that it is stocked; an hour is out of stock when the shelf was empty at any moment in it. A
  SKU with no reading is in stock. The ledger's stock where it is known counts too: an event
  that leaves nothing on hand is an empty-shelf reading at its time;
- the price: ``unit_price`` of the day's latest sale against the highest in the window (the
  list price), and ``reason == "activity"`` on a sale for the day's activity flag.

Watermark: the newest event time seen (tills and sensors of the store alike) minus
``lateness_s``. Hour ``[H, H+1)`` is complete, and predicted exactly once, when the watermark
reaches ``H+1``. An event later than that is still applied in event-time order: its sale or
reading counts in every later prediction (and its hour's flag is rebuilt), but a prediction
already made is never revised; :attr:`IntradayWarner.late_events` counts them.

Alerts: a SKU in stock whose probability reaches the threshold opens an episode and one
``StockoutAlert`` (``warning="intraday"``, ``episode="open"``) goes out; the episode stays
open (no repeat) while the risk stays above ``threshold - hysteresis`` or the shelf is out,
and clears (``episode="cleared"``) when stock returns after the stock-out, or when the shelf
stayed stocked and the risk fell below ``threshold - hysteresis``.

>>> w = HourlyWindow()
>>> w.local_hour("2024-06-01T10:30:00+08:00")[1:3]
(19875, 10)
"""

from __future__ import annotations

import bisect
import sqlite3
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

import numpy as np

from edge_runtime.forecast.daily_sales import SIGN
from edge_runtime.forecast.scoring import Scorer
from edge_runtime.messages import ReasonCode, StockoutAlert, decision_id
from edge_runtime.store.event_log_reads import events_since_day, last_logged_day
from feature_store.intraday import (
    FEATURES,
    HISTORY_DAYS,
    HORIZON_HOURS,
    WARNING_HOURS,
    WINDOW_DAYS,
    today_features,
)
from feature_store.spec import weekday

MODEL = "stockout_4h"
HOUR_US = 3_600_000_000
DAY_HOURS = 24
_SLOTS = WINDOW_DAYS + 2  # the window, and room for events of the next days ahead of it
AVAILABILITY = "shelf_units"
STOCKING = frozenset({"receipt", "cycle_count", "transfer_in"})
ACTIVITY_REASON = "activity"
# What an alert shows of the numbers behind it (feature name -> evidence name).
EVIDENCE = {
    "sold_today": "sold_today",
    "expected_so_far": "expected_so_far",
    "latent_next": "expected_next_4h",
    "hours_since_sale": "hours_since_sale",
    "out_hours_today": "out_hours_today",
    "hist_out_next_mean": "past_out_rate_next_4h",
    "sold_before_out_mean": "sold_before_past_sell_outs",
    "discount": "price_ratio",
    "activity": "activity",
}
_COL = {n: i for i, n in enumerate(FEATURES)}


@dataclass
class Prediction:
    """One scored SKU-hour (kept for scoring against what followed)."""

    sku: str
    day: int  # store day, days since the epoch
    hour: int
    probability: float


class HourlyWindow:
    """Per-SKU hourly sales, prices and availability readings of the last store days.

    >>> w = HourlyWindow()
    >>> w.index("A"), w.index("B"), w.index("A"), w.sales.shape  # SKU rows x day slots x hours
    (0, 1, 0, (2, 17, 24))
    >>> w.slot(19875), w.slot(19876), w.slot(19875 + 17)  # a later day moves the window on
    (0, 1, 16)
    >>> w.slot(19875) is None, w.base  # the first day has left it
    (True, 19876)
    """

    def __init__(self) -> None:
        self.skus: dict[str, int] = {}
        self.base = -1  # store day of slot 0 (-1: no event yet)
        self.sales = np.zeros((0, _SLOTS, DAY_HOURS))
        self.out = np.zeros((0, _SLOTS, DAY_HOURS), np.uint8)
        self.price = np.full((0, _SLOTS), np.nan)
        self.activity = np.zeros((0, _SLOTS))
        self.readings: list[list[tuple[int, bool]]] = []  # per SKU: (local us, empty), sorted
        self.offset_us = 0  # the store's UTC offset, from its latest event

    def local_hour(self, event_time: str) -> tuple[int, int, int]:
        """``(local microseconds, store day, hour)`` of an event time (its own offset)."""
        when = datetime.fromisoformat(event_time)
        offset = when.utcoffset() or timedelta(0)
        self.offset_us = int(offset.total_seconds() * 1e6)
        local = _local_us(when)
        return local, local // (DAY_HOURS * HOUR_US), (local // HOUR_US) % DAY_HOURS

    def index(self, sku: str) -> int:
        i = self.skus.get(sku)
        if i is None:
            i = self.skus[sku] = len(self.skus)
            grow = lambda a, fill: np.concatenate([a, np.full((1, *a.shape[1:]), fill, a.dtype)])  # noqa: E731
            self.sales, self.out = grow(self.sales, 0), grow(self.out, 0)
            self.price, self.activity = grow(self.price, np.nan), grow(self.activity, 0)
            self.readings.append([])
        return i

    def slot(self, day: int) -> int | None:
        """The slot of ``day``, moving the window forward for a later day; None when the day
        is older than the window holds."""
        if self.base < 0:
            self.base = day
        shift = day - (self.base + _SLOTS - 1)
        if shift > 0:
            for name in ("sales", "out", "price", "activity"):
                a = getattr(self, name)
                fill = np.nan if name == "price" else 0
                moved = np.full_like(a, fill)
                if shift < _SLOTS:
                    moved[:, : _SLOTS - shift] = a[:, shift:]
                setattr(self, name, moved)
            self.base += shift
        return None if day < self.base else day - self.base

    def empty_during(self, i: int, start_us: int) -> bool:
        """Was SKU ``i``'s shelf empty at any moment of the hour from ``start_us`` (local)?"""
        log = self.readings[i]
        k = bisect.bisect_right(log, (start_us, True))
        if k and log[k - 1][1]:
            return True  # empty since before the hour
        end = start_us + HOUR_US
        while k < len(log) and log[k][0] < end:
            if log[k][1]:
                return True
            k += 1
        return False

    def forget_before(self, local_us: int) -> None:
        """Drop readings older than ``local_us`` except the last one before it (the state)."""
        for i, log in enumerate(self.readings):
            k = bisect.bisect_left(log, (local_us, False))
            if k > 1:
                self.readings[i] = log[k - 1 :]


def _local_us(when: datetime) -> int:
    """Microseconds since the epoch of the wall-clock time ``when`` shows (its local time)."""
    naive = when.replace(tzinfo=UTC)
    return round(naive.timestamp() * 1_000_000)


@dataclass
class _Episode:
    probability: float
    went_out: bool = False


@dataclass
class IntradayWarner:
    """The gateway's intraday warning (see the module docstring): ``observe`` committed events,
    get the alerts the hours they completed call for.

    ``score`` maps a feature matrix (rows x :data:`~feature_store.intraday.FEATURES`) to
    probabilities: the bundle's ONNX model under ONNX Runtime in the gateway.

    >>> w = IntradayWarner("S1", lambda X: np.full(len(X), 0.9), "m1", threshold=0.5)
    >>> w.watermark_us is None
    True
    """

    store_id: str
    score: object
    model_version: str
    threshold: float
    hysteresis: float = 0.05
    lateness_s: float = 900.0
    keep_predictions: int = 1_000_000
    window: HourlyWindow = field(default_factory=HourlyWindow)
    episodes: dict[str, _Episode] = field(default_factory=dict)
    predictions: deque = field(default_factory=deque)
    late_events: int = 0
    too_old_events: int = 0
    predict_from_day: int = 0  # hours of earlier days are flagged, not predicted (a rebuild)
    _newest_us: int | None = None
    _frontier: int | None = None  # the next hour (local hours since the epoch) to complete
    _first_day: int | None = None

    @property
    def watermark_us(self) -> int | None:
        """Local time up to which every hour counts as complete (None before any event)."""
        if self._newest_us is None:
            return None
        return self._newest_us - int(self.lateness_s * 1e6)

    def observe(self, events: Iterable, steps: Iterable = ()) -> list[StockoutAlert]:
        """Apply ``events`` by event time and predict every hour they completed; returns the
        alerts to publish. ``steps``: the ledger's ``(event, state after it)`` pairs: where the
        SKU's stock is known (it was received or counted), an event that leaves nothing on hand
        is an empty-shelf reading and a receipt or count that leaves units a stocked one."""
        w = self.window
        known = {}
        for e, s in steps:
            if (s.counts or s.received) and (s.on_hand <= 0 or e.type in STOCKING):
                known[e.event_id] = s.on_hand <= 0
        for e in events:
            local, day, hour = w.local_hour(e.event_time)
            if self._first_day is None:
                self._first_day = day
                self._frontier = day * DAY_HOURS
            slot = w.slot(day)
            if slot is None:
                self.too_old_events += 1
                continue
            if local // HOUR_US < self._frontier:
                self.late_events += 1
            i = w.index(e.sku)
            sign = SIGN.get(e.type)
            if sign is not None:
                w.sales[i, slot, hour] += sign * float(e.qty)
                if sign > 0 and e.unit_price is not None:
                    w.price[i, slot] = float(e.unit_price)
                if e.reason == ACTIVITY_REASON:
                    w.activity[i, slot] = 1.0
            if e.type == AVAILABILITY:
                self._reading(i, local, e.qty == 0)
            elif e.event_id in known:
                self._reading(i, local, known[e.event_id])
            self._newest_us = local if self._newest_us is None else max(self._newest_us, local)
        return self._complete_hours()

    def _reading(self, i: int, local: int, empty: bool) -> None:
        w = self.window
        bisect.insort(w.readings[i], (local, empty))
        hour = local // HOUR_US
        if hour < self._frontier:  # a late reading: rebuild the flags it changes
            for h in range(max(hour, w.base * DAY_HOURS), self._frontier):
                self._flag(i, h)

    def _flag(self, i: int, hour: int) -> None:
        w = self.window
        w.out[i, hour // DAY_HOURS - w.base, hour % DAY_HOURS] = w.empty_during(i, hour * HOUR_US)

    def _complete_hours(self) -> list[StockoutAlert]:
        out: list[StockoutAlert] = []
        mark = self.watermark_us
        if mark is None:
            return out
        while (self._frontier + 1) * HOUR_US <= mark:
            hour = self._frontier
            day, h = divmod(hour, DAY_HOURS)
            if self.window.slot(day) is not None:
                for i in range(len(self.window.skus)):
                    self._flag(i, hour)
                out += self._episodes_after(day, h)
                if (
                    h in WARNING_HOURS
                    and day >= self.predict_from_day
                    and day - HISTORY_DAYS >= self._first_day
                ):
                    out += self._predict(day, h)
            self._frontier += 1
            if h == DAY_HOURS - 1:
                self.window.forget_before((self.window.base) * DAY_HOURS * HOUR_US)
        return out

    def _features(self, day: int, hour: int) -> np.ndarray:
        w = self.window
        s1 = day - w.base + 1
        s0 = s1 - WINDOW_DAYS
        sales, out = w.sales[:, s0:s1].copy(), w.out[:, s0:s1].copy()
        sales[:, -1, hour + 1 :] = 0  # hours not complete yet are not known
        out[:, -1, hour + 1 :] = 0
        days = np.arange(day - WINDOW_DAYS + 1, day + 1)
        return today_features(
            sales, out, w.price[:, s0:s1], w.activity[:, s0:s1], weekday(days), [hour]
        )[0]

    def _predict(self, day: int, hour: int) -> list[StockoutAlert]:
        w = self.window
        if not w.skus or day - w.base + 1 < WINDOW_DAYS:  # the window lacks its first days
            return []
        instock = np.flatnonzero(w.out[:, day - w.base, hour] == 0)
        if not len(instock):
            return []
        X = self._features(day, hour)[instock]
        probs = np.asarray(self.score(X), np.float64).reshape(-1)
        names = list(w.skus)
        out = []
        for row, i in enumerate(instock.tolist()):
            sku, p = names[i], float(probs[row])
            self.predictions.append(Prediction(sku, day, hour, p))
            ep = self.episodes.get(sku)
            if ep is None and p >= self.threshold:
                self.episodes[sku] = _Episode(p)
                out.append(self._alert(sku, day, hour, p, "open", X[row]))
            elif ep is not None and not ep.went_out and p < self.threshold - self.hysteresis:
                del self.episodes[sku]
                out.append(self._alert(sku, day, hour, p, "cleared", X[row]))
        while len(self.predictions) > self.keep_predictions:
            self.predictions.popleft()
        return out

    def _episodes_after(self, day: int, hour: int) -> list[StockoutAlert]:
        """Episodes after an hour's flags: a stock-out marks them, stock back clears them."""
        w = self.window
        out = []
        for sku, ep in list(self.episodes.items()):
            empty = bool(w.out[w.skus[sku], day - w.base, hour])
            if empty:
                ep.went_out = True
            elif ep.went_out:
                del self.episodes[sku]
                out.append(self._alert(sku, day, hour, ep.probability, "cleared", None))
        return out

    def _alert(self, sku, day, hour, p, episode, x) -> StockoutAlert:
        tz = timezone(timedelta(microseconds=self.window.offset_us))
        start = datetime(1970, 1, 1, tzinfo=tz) + timedelta(hours=day * DAY_HOURS + hour)
        if episode == "open":
            reasons = [ReasonCode.INTRADAY_SELL_OUT_RISK]
        else:
            reasons = [ReasonCode.RISK_FELL if x is not None else ReasonCode.STOCK_RETURNED]
        evidence: dict = {"threshold": self.threshold, "hour": hour}
        if x is not None:
            evidence.update({name: round(float(x[_COL[f]]), 4) for f, name in EVIDENCE.items()})
        epoch = f"intraday:{start.isoformat()}:{episode}"
        return StockoutAlert(
            message_id=decision_id(self.store_id, "stockout", sku, epoch),
            store_id=self.store_id,
            sku=sku,
            event_time=start + timedelta(hours=1),
            model_version=self.model_version,
            probability=min(max(p, 0.0), 1.0),
            horizon_hours=float(HORIZON_HOURS),
            reason_codes=reasons,
            evidence=evidence,
            warning="intraday",
            episode=episode,
            hour_start=start,
        )


class LoggedEvent(NamedTuple):
    """What the warning reads of an event in the ledger's log."""

    event_id: str
    sku: str
    type: str
    qty: float
    event_time: str
    unit_price: float | None
    reason: str | None


def warner_from_ledger(
    bundle,
    conn: sqlite3.Connection,
    store_id: str,
    threshold: float,
    hysteresis: float = 0.05,
    lateness_s: float = 900.0,
    threads: int = 1,
) -> IntradayWarner | None:
    """The warning of a verified bundle (None when it has no ``stockout_4h`` model), its window
    refilled from the ledger's log of the last days in commit order (a start, a rollback, a
    new bundle). The bundle's own threshold (``metadata.json``: ``stockout_4h.threshold``, the
    best F1 on its training rows) wins over ``threshold``. Only the last two logged days are
    predicted again (nothing is published for them): the episodes open at a restart are the
    ones open before it."""
    if MODEL not in bundle.models:
        return None
    scorer = Scorer(
        {MODEL: bundle.model_bytes(MODEL)}, list(FEATURES), bundle.model_version, threads
    )
    prob = scorer.outputs(MODEL)[-1]  # the classifier's [N, 2] probabilities come last
    own = bundle.metadata.get(MODEL, {})
    warner = IntradayWarner(
        store_id,
        lambda X: scorer.score(MODEL, X)[prob][:, 1],
        bundle.model_version,
        threshold=float(own.get("threshold", threshold)),
        hysteresis=hysteresis,
        lateness_s=lateness_s,
    )
    last = last_logged_day(conn)
    if last is None:
        return warner
    last_day = np.datetime64(last, "D")
    warner.predict_from_day = int(last_day.astype(np.int64)) - 1
    for rows in events_since_day(conn, str(last_day - _SLOTS)):
        warner.observe([LoggedEvent(*r) for r in rows])
    return warner
