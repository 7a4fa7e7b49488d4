"""Many streaming series side by side: the state of ``feature_store.streaming.SeriesState`` for
every SKU of a store as arrays, closed one step at a time for all of them at once.

Why: a gateway closes a store day for every SKU it knows, then re-scores them all. Kept as one
``SeriesState`` each, a close was a Python call per SKU and the re-score copied every SKU's
``HISTORY_STEPS`` steps out of its deque into a matrix (most of a close's cost). Here the units
live in that matrix already (a right-aligned window over a buffer with spare columns, shifted
back once every ``SPARE_STEPS`` closes), so the features are computed on a view of it with the
very definitions batch parity is tested against (``window_feature_matrix``).

Rows are added in key order and never removed; every row closes every step after it was added
(the gateway's SKUs: a SKU's series starts on its first day and then closes daily).

>>> panel = SeriesPanel()
>>> panel.close_step(["A"], np.array([1.0]), np.array([2.5]))
>>> panel.close_step(["A", "B"], np.array([0.0, 3.0]), np.array([np.nan, np.nan]))
>>> panel.row("A").units, panel.row("B").units, panel.row("A").last_price
([1.0, 0.0], [3.0], 2.5)
>>> from feature_store.spec import close_names
>>> round(float(panel.close_features()[0, close_names().index("mean_7")]), 6)
0.5
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from feature_store.spec import HISTORY_STEPS, PRICE_WINDOW
from feature_store.streaming import SeriesScalars, window_close_features, window_feature_matrix

SPARE_STEPS = 64  # closes between two shifts of the units buffer


class SeriesPanel:
    """The series of ``keys`` (in the order they were added) as arrays; see the module doc.

    >>> panel = SeriesPanel()
    >>> panel.add(["A", "B"])
    >>> panel.close_step(["A", "B"], np.array([1.0, 2.0]), np.array([2.5, np.nan]))
    >>> len(panel), panel.keys, panel.scalars().days_seen.tolist()
    (2, ['A', 'B'], [1, 1])
    """

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self._units = np.zeros((64, HISTORY_STEPS + SPARE_STEPS))
        self._end = HISTORY_STEPS  # the column after the newest step
        self._prices = np.full((64, PRICE_WINDOW), np.nan)  # circular: only their max is read
        self._price_col = 0
        self._lens = np.zeros(64, dtype=np.int64)  # steps held, up to HISTORY_STEPS
        self._seen = np.zeros(64, dtype=np.int64)  # days_seen
        self._last_sale = np.full(64, -1, dtype=np.int64)  # last_sale_age
        self._last_price = np.full(64, np.nan)
        self._last_promo = np.zeros(64)
        self._close: np.ndarray | None = None  # close features of the current step (a cache)

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, keys: Iterable[str]) -> None:
        """Start the series of the ``keys`` not held yet (with no step closed)."""
        for key in keys:
            if key not in self.index:
                if len(self.keys) == len(self._lens):
                    self._grow()
                row = len(self.keys)
                self.index[key] = row
                self.keys.append(key)
                self._units[row] = 0.0  # zero-padded before its first step, as a window is
        self._close = None

    def close_step(
        self, keys: Iterable[str], units: np.ndarray, prices: np.ndarray | None = None
    ) -> None:
        """Close one step of every series: ``keys`` are added first (new series), then
        ``units`` and ``prices`` (NaN: unknown; None: none known) give each row's step, in row
        order (``SeriesState.close_day`` for all rows; the promotion flag is 0)."""
        self.add(keys)
        n = len(self.keys)
        if len(units) != n:
            raise ValueError(f"close_step: {len(units)} units for {n} series")
        if self._end == self._units.shape[1]:  # out of spare columns: the window moves back
            self._units[:, :HISTORY_STEPS] = self._units[:, -HISTORY_STEPS:]
            self._end = HISTORY_STEPS
        u = np.asarray(units, dtype=np.float64)
        self._units[:n, self._end] = u
        self._end += 1
        self._lens[:n] = np.minimum(self._lens[:n] + 1, HISTORY_STEPS)
        sold = u > 0
        self._last_sale[:n][sold] = self._seen[:n][sold]
        self._seen[:n] += 1
        price = np.full(n, np.nan) if prices is None else np.asarray(prices, dtype=np.float64)
        known = ~np.isnan(price)
        self._last_price[:n][known] = price[known]
        self._prices[:n, self._price_col] = price
        self._price_col = (self._price_col + 1) % PRICE_WINDOW
        self._last_promo[:n] = 0.0
        self._close = None

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """The last ``HISTORY_STEPS`` steps of every row (a view: read, never keep) and how
        many steps each holds."""
        n = len(self.keys)
        return self._units[:n, self._end - HISTORY_STEPS : self._end], self._lens[:n]

    def scalars(self) -> SeriesScalars:
        n = len(self.keys)
        return SeriesScalars(
            self._seen[:n], self._last_sale[:n], self._last_price[:n], self._last_promo[:n],
            self._prices[:n],
        )  # fmt: skip

    def close_features(self) -> np.ndarray:
        """Every row's close features (``close_names()`` order), computed once per step."""
        if self._close is None:
            self._close = window_close_features(self.window(), self.scalars())
        return self._close

    def feature_matrix(self, close_day: np.datetime64, horizons) -> np.ndarray:
        """Every row's demand-model rows from ``close_day`` (``streaming.feature_matrix``)."""
        return window_feature_matrix(
            self.window(), self.scalars(), close_day, horizons, close=self.close_features()
        )

    def row(self, key: str) -> SeriesRow:
        return SeriesRow(self, self.index[key])

    def _grow(self) -> None:
        cap = 2 * len(self._lens)

        def grown(a: np.ndarray, fill) -> np.ndarray:
            out = np.full((cap, *a.shape[1:]), fill, dtype=a.dtype)
            out[: len(a)] = a
            return out

        self._units = grown(self._units, 0.0)
        self._prices = grown(self._prices, np.nan)
        self._lens, self._seen = grown(self._lens, 0), grown(self._seen, 0)
        self._last_sale = grown(self._last_sale, -1)
        self._last_price, self._last_promo = (
            grown(self._last_price, np.nan),
            grown(self._last_promo, 0.0),
        )


class SeriesRow:
    """One row of a panel read as a ``SeriesState`` (the same fields; a copy of the moment).

    >>> panel = SeriesPanel()
    >>> panel.close_step(["A"], np.array([1.0]), np.array([2.5]))
    >>> row = panel.row("A")  # a copy: later closes do not change it
    >>> panel.close_step(["A"], np.array([3.0]), np.array([np.nan]))
    >>> row.units, row.prices, panel.row("A").units
    ([1.0], [2.5], [1.0, 3.0])
    """

    __slots__ = ("days_seen", "last_price", "last_promo", "last_sale_age", "prices", "units")

    def __init__(self, panel: SeriesPanel, row: int):
        U, lens = panel.window()
        self.units = U[row, HISTORY_STEPS - lens[row] :].tolist()
        prices = np.roll(panel._prices[row], -panel._price_col).tolist()  # oldest first
        self.prices = prices[-min(int(panel._seen[row]), PRICE_WINDOW) :] if lens[row] else []
        self.days_seen = int(panel._seen[row])
        self.last_sale_age = int(panel._last_sale[row])
        self.last_price = float(panel._last_price[row])
        self.last_promo = float(panel._last_promo[row])


class SeriesRows(Mapping):
    """A panel as a read-only mapping of key to :class:`SeriesRow` (what ``series`` was).

    >>> panel = SeriesPanel()
    >>> panel.close_step(["A", "B"], np.array([1.0, 0.0]), np.array([np.nan, np.nan]))
    >>> rows = SeriesRows(panel)
    >>> list(rows), "B" in rows, "C" in rows, rows["A"].units
    (['A', 'B'], True, False, [1.0])
    """

    def __init__(self, panel: SeriesPanel):
        self._panel = panel

    def __getitem__(self, key: str) -> SeriesRow:
        return self._panel.row(key)

    def __contains__(self, key: object) -> bool:
        return key in self._panel.index

    def __iter__(self) -> Iterator[str]:
        return iter(self._panel.keys)

    def __len__(self) -> int:
        return len(self._panel.keys)
