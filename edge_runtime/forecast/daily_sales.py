"""Each SKU's daily net sales, kept incrementally from ingested events, as feature-store series.

The demand model forecasts from a SKU's *daily* units (``feature_store.streaming.SeriesState``,
the same feature definitions training used). The gateway keeps one ``SeriesState`` per SKU and
the open day's running totals; nothing is read back from the event log after start-up.

- The store day of an event is the date written in its ``event_time`` (events carry the store's
  local offset, so this is the store's calendar day).
- Net units of a day: sales and fulfilments minus returns and voids (clipped at 0 when closed);
  other event types only start a SKU's series (a SKU enters the model's view on its first event).
- A day closes when an event of a later day arrives: every SKU's series gets that day's units
  (0 when it sold nothing), and every day in a gap closes with zeros.
- A late event (for a day already closed) is counted in the open day: a closed day's features
  are never rewritten, and the units still reach the series (one day late) rather than being lost.
- A SKU whose shelf closed the day empty (the caller names them: ``empty``) is censored: its day
  counts as its estimated demand (``feature_store.censored_demand``) in the series and the
  history, so a stock-out does not read as demand falling; the closed day's units name it
  (``DayUnits.censored``) so that learning leaves that label out, as central training does.

>>> sales = DailySales()
>>> ev = lambda t, kind, q: SaleEvent("A", kind, q, t)
>>> sales.observe([ev("2026-01-01T10:00:00+01:00", "sale", 3), ev("2026-01-01T11:00:00+01:00", "return", 1)])
[]
>>> [str(d) for d, _ in sales.observe([ev("2026-01-02T09:00:00+01:00", "sale", 1)])]
['2026-01-01']
>>> sales.series["A"].units[-1], str(sales.last_closed), sales.open_units["A"]
(2.0, '2026-01-01', 1.0)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from edge_runtime.store.event_log_reads import day_totals_since, events_after, last_logged_day
from edge_runtime.store.stock import iso_utc
from feature_store.censored_demand import close_levels
from feature_store.series_panel import SeriesPanel, SeriesRows

SIGN = {"sale": 1.0, "fulfilment": 1.0, "return": -1.0, "void": -1.0}
HISTORY_DAYS = 400  # rebuilt at start-up: a year for the buffer, days_since_sale's cap (365)


@dataclass(frozen=True)
class SaleEvent:
    """What the sales series needs of an event (``edge_runtime.store.events.Event`` has these fields).

    >>> SaleEvent("A", "sale", 2, "2026-01-01T10:00:00+00:00").unit_price is None
    True
    """

    sku: str
    type: str
    qty: float
    event_time: str
    unit_price: float | None = None


class UnitsHistory:
    """The last ``days`` closed days of every SKU's net units as one float32 matrix (a row per
    SKU, a circular day axis), NaN before a SKU's first day: what the marginal safety buffer
    (``edge_runtime.decide.service_level.buffer_exceeded_every``) reads at each day close.

    Why a matrix and not longer per-SKU series: a year of days for 10,000 SKUs is 15 MB here
    against ~120 MB as Python floats, and the buffer is one vectorised pass over it.

    >>> h = UnitsHistory(days=3)  # "b" starts on day 2; day 4 overwrites day 1
    >>> h.close_day({"a": 2.0}, ["a"])
    >>> for units in ({"a": 1.0, "b": 4.0}, {}, {"b": 1.0}):
    ...     h.close_day(units, ["a", "b"])
    >>> [sorted(row) for row in h.matrix(["a", "b"]).tolist()]
    [[0.0, 0.0, 1.0], [0.0, 1.0, 4.0]]
    >>> bool(np.isnan(h.matrix(["never seen"])).all())
    True
    """

    def __init__(self, days: int = 364):
        self.days = days
        self.rows: dict[str, int] = {}
        self._m = np.full((64, days), np.nan, dtype=np.float32)
        self._col = 0  # the column the next closed day goes to

    def close_day(self, units: dict[str, float], skus: Iterable[str]) -> None:
        """Record a closed day: ``units`` per SKU that moved, 0 for the other ``skus``."""
        rows = self.rows
        for sku in skus:
            if sku not in rows:
                self._add_row(sku)
        n = len(rows)
        col = self._m[:, self._col]
        col[:n] = 0.0
        if units:
            idx = np.fromiter((rows[s] for s in units), dtype=np.int64, count=len(units))
            col[idx] = np.fromiter(units.values(), dtype=np.float32, count=len(units))
        self._col = (self._col + 1) % self.days

    def _add_row(self, sku: str) -> None:
        if len(self.rows) == self._m.shape[0]:
            grown = np.full((2 * self._m.shape[0], self.days), np.nan, dtype=np.float32)
            grown[: self._m.shape[0]] = self._m
            self._m = grown
        self.rows[sku] = len(self.rows)
        # A new SKU's row stays NaN for the days before it (they did not exist for it).

    def last_day(self, skus: list[str], back: int = 0) -> np.ndarray:
        """Each of ``skus``' units on the last closed day, or ``back`` days before it (NaN for
        one never seen): what a forecast for that day is checked against.

        >>> h = UnitsHistory(days=3)
        >>> h.close_day({"a": 2.0}, ["a"]); h.close_day({"a": 5.0}, ["a"])
        >>> h.last_day(["a", "b"]).tolist(), h.last_day(["a"], back=1).tolist()
        ([5.0, nan], [2.0])
        """
        if not 0 <= back < self.days:
            raise ValueError(f"only the last {self.days} closed days are kept, not {back} back")
        col = self._m[:, (self._col - 1 - back) % self.days]
        idx = np.fromiter((self.rows.get(s, -1) for s in skus), dtype=np.int64, count=len(skus))
        return np.where(idx >= 0, col[np.maximum(idx, 0)], np.nan)

    def matrix(self, skus: list[str]) -> np.ndarray:
        """Rows for ``skus`` (all NaN for one never seen), days in no particular order, as
        stored (float32: what the buffer sorts, at half the cost of float64)."""
        rows = self.rows
        idx = np.fromiter((rows.get(s, -1) for s in skus), dtype=np.int64, count=len(skus))
        out = self._m[np.maximum(idx, 0)]
        out[idx < 0] = np.nan
        return out


class DayUnits(dict):
    """A closed day's units per SKU (its estimate where the shelf closed empty), and which SKUs'
    figures are such estimates (``censored``): features use them, labels do not.

    >>> d = DayUnits({"A": 3.0, "B": 1.0}, censored=frozenset({"B"}))
    >>> d["A"], sorted(d.censored)
    (3.0, ['B'])
    """

    __slots__ = ("censored",)

    def __init__(self, units: dict[str, float], censored: frozenset[str] = frozenset()) -> None:
        super().__init__(units)
        self.censored = censored


class DailySales:
    """Per-SKU ``SeriesState`` of closed days plus the open day's totals (see module docstring).

    >>> DailySales().last_closed is None
    True
    """

    def __init__(self) -> None:
        self.panel = SeriesPanel()  # every SKU's closed days, side by side (the model's input)
        self.open_units: dict[str, float] = {}  # SKU -> net units of the open day so far
        self.open_price: dict[str, float] = {}  # SKU -> last unit price seen on the open day
        self._open = (
            -1
        )  # the open day as days since the epoch (-1: no event yet); ints compare fast
        self._days: dict[str, int] = {}  # event_time date text -> day number (parse once)
        self.history = UnitsHistory()  # the last year of closed days (the marginal buffer)
        self.in_stock = np.full(0, np.nan)  # each panel row's in-stock level (censored days)

    @property
    def series(self) -> SeriesRows:
        """Each SKU's closed days read as a ``SeriesState`` (a read-only mapping)."""
        return SeriesRows(self.panel)

    @property
    def open_day(self) -> np.datetime64 | None:
        """The day events are being added to (None before any event)."""
        return None if self._open < 0 else np.datetime64(self._open, "D")

    @property
    def last_closed(self) -> np.datetime64 | None:
        """The last closed day (the day before the open one), None before any event."""
        return None if self._open < 0 else np.datetime64(self._open - 1, "D")

    def day_of(self, event_time: str) -> int:
        """The store day of an event time, as days since the epoch."""
        text = event_time[:10]
        day = self._days.get(text)
        if day is None:
            if len(self._days) > 4096:  # a bounded cache: dates only move forward
                self._days.clear()
            day = self._days[text] = int(np.datetime64(text, "D").astype(np.int64))
        return day

    def now_text(self, clock_us: int) -> str | None:
        """The store's "now" as event-time text: ``clock_us`` (the ledger clock), within the
        open store day."""
        now = iso_utc(clock_us) if clock_us else None
        day = self.open_day
        if day is not None and (now is None or np.datetime64(now[:10], "D") < day):
            return f"{day}T00:00:00+00:00"  # the clock's UTC date can lag the store's date
        return now

    def recent(self, sku: str, days: int) -> tuple[str, list[float], float] | None:
        """Net units of ``sku`` on its last ``days`` closed days (oldest first; fewer when its
        series is younger), the open day (ISO date) and its units so far. None for a SKU never
        seen."""
        series, open_units = self.series.get(sku), self.open_units.get(sku)
        if (series is None and open_units is None) or self.open_day is None:
            return None
        closed = list(series.units)[-days:] if series is not None and days > 0 else []
        return str(self.open_day), closed, float(open_units or 0.0)

    def crosses(self, events: Iterable) -> bool:
        """Would ``events`` close the open day (an event of a later day among them)?"""
        if self._open < 0:
            return False
        day_of, open_day = self.day_of, self._open
        return any(day_of(e.event_time) > open_day for e in events)

    def observe(
        self, events: Iterable, within_open_day: bool = False, empty: Collection[str] = ()
    ) -> list[tuple[np.datetime64, dict[str, float]]]:
        """Add ``events`` (in day order; a batch is sorted here); returns the days this closed,
        each with the net units per SKU it closed with. ``within_open_day``: the caller already
        knows (``crosses``) that no event is of a later day. ``empty``: the SKUs whose shelf is
        empty now, before these events (censored, should a day close)."""
        events = list(events)
        if self._open >= 0 and (within_open_day or not self.crosses(events)):
            for e in events:  # the common case: all in the open day (or late)
                self._add(e)
            return []
        day_of = self.day_of
        dated = sorted(((day_of(e.event_time), e) for e in events), key=lambda p: p[0])
        return self._feed(dated, empty)

    def _feed(
        self, dated: Iterable, empty: Collection[str] = ()
    ) -> list[tuple[np.datetime64, dict[str, float]]]:
        closed: list[tuple[np.datetime64, dict[str, float]]] = []
        for day, e in dated:
            if self._open < 0:
                self._open = day
            elif day > self._open:
                closed += self.close_until(day, empty)
                empty = ()  # later days of the batch: their events moved the stock
            self._add(e)
        return closed

    def _add(self, e) -> None:
        sign = SIGN.get(e.type)
        sku = e.sku
        units = self.open_units
        if sign is None:  # receipts, counts, sensor readings: the SKU's series starts, no units
            if sku not in units:
                units[sku] = 0.0
            return
        units[sku] = units.get(sku, 0.0) + sign * e.qty
        if sign > 0 and e.unit_price is not None:
            self.open_price[sku] = float(e.unit_price)

    def close_until(
        self, day: int, empty: Collection[str] = ()
    ) -> list[tuple[np.datetime64, dict[str, float]]]:
        """Close the open day and any empty days before ``day`` (days since the epoch); ``day``
        becomes the open one. ``empty``: SKUs whose shelf closed these days empty (censored)."""
        closed = []
        panel = self.panel
        while self._open < day:
            units, self.open_units = self.open_units, {}
            prices, self.open_price = self.open_price, {}
            panel.add(units)
            n, index = len(panel), panel.index
            sold = np.zeros(n)
            if units:
                rows = np.fromiter((index[s] for s in units), dtype=np.int64, count=len(units))
                sold[rows] = np.maximum(np.fromiter(units.values(), np.float64, len(units)), 0.0)
            shelf_empty = np.zeros(n, dtype=bool)
            gone = [index[s] for s in empty if s in index]
            shelf_empty[gone] = True
            demand = close_levels(self._levels(n), sold, shelf_empty)  # empty shelf: its demand
            price = np.full(n, np.nan)
            if prices:
                price[[index[s] for s in prices]] = list(prices.values())
            panel.close_step((), demand, price)
            # The SKUs that moved, and those whose demand was lifted, as the days' units.
            day_units = {s: max(u, 0.0) for s, u in units.items()}
            for i in np.flatnonzero(demand != sold).tolist():
                day_units[panel.keys[i]] = float(demand[i])
            self.history.close_day(day_units, panel.keys)
            censored = frozenset(panel.keys[i] for i in gone)
            closed.append((np.datetime64(self._open, "D"), DayUnits(day_units, censored)))
            self._open += 1
        return closed

    def _levels(self, n: int) -> np.ndarray:
        """The in-stock level per panel row, grown with the panel (NaN: no in-stock day yet)."""
        if len(self.in_stock) < n:
            grown = np.full(max(n, 2 * len(self.in_stock)), np.nan)
            grown[: len(self.in_stock)] = self.in_stock
            self.in_stock = grown
        return self.in_stock[:n]

    def skus(self) -> list[str]:
        """SKUs with at least one closed day (what the model can score)."""
        return list(self.panel.keys)

    @classmethod
    def from_ledger(cls, conn: sqlite3.Connection) -> DailySales:
        """Rebuild from a ledger's event log (start-up only): the last ``HISTORY_DAYS`` days."""
        sales = cls()
        last_day = last_logged_day(conn)
        if last_day is None:
            return sales
        rows = day_totals_since(conn, str(np.datetime64(last_day, "D") - HISTORY_DAYS))
        day_of = sales.day_of  # rows come in day order: no sort, no list of millions
        sales._feed(
            (day_of(day), SaleEvent(sku, kind, qty, day, price))
            for day, sku, kind, qty, price in rows
        )
        return sales

    def catch_up(self, conn: sqlite3.Connection, after_seq: int, chunk: int = 5000) -> int:
        """Observe the events logged after position ``after_seq`` (a snapshot's), in log order
        as they were committed; returns how many were read. Days they close are closed here
        (the online correction does not learn from them: it learns again from the next close)."""
        n = 0
        for rows in events_after(conn, after_seq, chunk):
            self.observe([SaleEvent(*r) for r in rows])
            n += len(rows)
        return n
