"""FreshRetailNet-50K: real hourly sales with the retailer's own hourly stock-out flags.

One row of ``freshretailnet/daily.parquet`` is a store x product x day with its 24 hourly sales
(``hours_sale``, normalised quantities, not units) and 24 stock-out flags (``hours_stock_status``,
1 = out of stock). Every series covers the same days, so the data loads as dense arrays
(:class:`HourlyPanel`, series x day x hour): window statistics and features then are vectorised
array operations, not per-row groupbys. The list columns are flattened by pyarrow without Python
loops, so the whole file (3.8 M rows) loads in seconds.

Three views:

- :func:`load_hourly`: the :class:`HourlyPanel` (optionally a reproducible sample of series);
- :func:`daily_frame`: the canonical long daily history (``store_id, sku, date, units, price,
  promo, event``) plus ``stockout_hours`` (trading hours 6-21 out of stock) for any shelfcast pipeline;
- :func:`availability_labels`: long hourly frame ``store_id, sku, date, hour, sales,
  out_of_stock``, the ground truth stock-out predictions are scored against.

The file is found only through :func:`configuration.data_dir.require` (``SHELFCAST_DATA_DIR``).

>>> import numpy as np
>>> p = HourlyPanel(store=np.array([3]), product=np.array([7]), category=np.array([1]),
...     city=np.array([0]), start=np.datetime64("2024-03-28"),
...     sales=np.ones((1, 2, 24), np.float32), out=np.zeros((1, 2, 24), np.uint8),
...     discount=np.ones((1, 2), np.float32), activity=np.zeros((1, 2), np.int8),
...     holiday=np.zeros((1, 2), np.int8))
>>> p.n_series, p.n_days, p.keys[0]
(1, 2, ('3', '7'))
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from configuration.data_dir import require

DAILY = "freshretailnet/daily.parquet"
HOURS = 24
# The hours the publisher's ``stock_hour6_22_cnt`` counts (6..21): the trading day we score on.
TRADING_HOURS = range(6, 22)
# Tills count whole units: a replay sends sales as this many till units per normalised unit
# (the data's quantities have two or three decimals), and the warning model learns in them.
TILL_UNITS = 100
_KEY_COLUMNS = ["city_id", "store_id", "third_category_id", "product_id", "dt"]
_DAY_COLUMNS = ["discount", "activity_flag", "holiday_flag"]
_LIST_COLUMNS = ["hours_sale", "hours_stock_status"]


class FreshRetailNetError(ValueError):
    """The file does not have the shape this loader relies on."""


@dataclass
class HourlyPanel:
    """Dense hourly history: ``sales[s, d, h]`` and ``out[s, d, h]`` (1 = out of stock) of series
    ``s`` on day ``d`` (from ``start``) at hour ``h``; per series-day ``discount`` (price ratio,
    1 = full price), ``activity`` and ``holiday`` flags; per series ``store``, ``product``,
    ``category`` (third-level category id) and ``city``.

    >>> p = HourlyPanel(store=np.array([3]), product=np.array([7]), category=np.array([1]),
    ...     city=np.array([0]), start=np.datetime64("2024-03-28"),
    ...     sales=np.ones((1, 3, 24), np.float32), out=np.zeros((1, 3, 24), np.uint8),
    ...     discount=np.ones((1, 3)), activity=np.zeros((1, 3)), holiday=np.zeros((1, 3)))
    >>> p.dates.tolist()[-1], p.sales[0].sum(axis=1).tolist()  # each day's units
    (datetime.date(2024, 3, 30), [24.0, 24.0, 24.0])
    """

    store: np.ndarray
    product: np.ndarray
    category: np.ndarray
    city: np.ndarray
    start: np.datetime64
    sales: np.ndarray
    out: np.ndarray
    discount: np.ndarray
    activity: np.ndarray
    holiday: np.ndarray

    @property
    def n_series(self) -> int:
        return int(self.sales.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.sales.shape[1])

    @property
    def dates(self) -> np.ndarray:
        return np.datetime64(self.start, "D") + np.arange(self.n_days)

    @property
    def keys(self) -> list[tuple[str, str]]:
        """``(store_id, sku)`` of each series, as the canonical frame spells them."""
        return [(str(s), str(p)) for s, p in zip(self.store, self.product, strict=True)]


def _list_values(table, column: str, rows: np.ndarray, n_days: int) -> np.ndarray:
    flat = table.column(column).combine_chunks()
    lengths = np.diff(flat.offsets.to_numpy())
    if len(lengths) and (lengths.min() != HOURS or lengths.max() != HOURS):
        raise FreshRetailNetError(f"{column}: every row must hold {HOURS} hours")
    values = flat.values.to_numpy(zero_copy_only=False).reshape(-1, HOURS)
    return values[rows.ravel()].reshape(len(rows), n_days, HOURS)


def load_hourly(
    path: str | os.PathLike[str] | None = None,
    series: int | None = None,
    seed: int = 0,
    stores: int | None = None,
) -> HourlyPanel:
    """The hourly panel of the data set (``path`` overrides the data dir's file); ``series``
    keeps a reproducible random sample of that many series, ``stores`` every series of that
    many random stores (as a gateway sees its whole store); all series when neither is given."""
    import pyarrow.parquet as pq

    source = path or require(DAILY)
    table = pq.read_table(source, columns=_KEY_COLUMNS + _DAY_COLUMNS + _LIST_COLUMNS)
    store = table.column("store_id").to_numpy()
    product = table.column("product_id").to_numpy()
    day = table.column("dt").to_numpy().astype("datetime64[D]")
    start = day.min()
    n_days = int((day.max() - start).astype(int)) + 1
    order = np.lexsort((day, product, store))
    n_series, rest = divmod(len(order), n_days)
    if rest:
        raise FreshRetailNetError(
            f"{source}: {len(order)} rows are not whole series of {n_days} days each"
        )
    rows = order.reshape(n_series, n_days)
    expected = start + np.arange(n_days)
    if not (day[rows] == expected).all() or not (store[rows] == store[rows[:, :1]]).all():
        raise FreshRetailNetError(f"{source}: a series misses a day or repeats one")
    if stores is not None:
        ids = np.unique(store)
        pick = np.random.default_rng(seed).choice(ids, min(stores, len(ids)), replace=False)
        rows = rows[np.isin(store[rows[:, 0]], pick)]
    elif series is not None and series < n_series:
        pick = np.sort(np.random.default_rng(seed).choice(n_series, series, replace=False))
        rows = rows[pick]
    first = rows[:, 0]

    def per_day(name, dtype):
        return table.column(name).to_numpy()[rows].astype(dtype)

    return HourlyPanel(
        store=store[first],
        product=product[first],
        category=table.column("third_category_id").to_numpy()[first],
        city=table.column("city_id").to_numpy()[first],
        start=start,
        sales=_list_values(table, "hours_sale", rows, n_days).astype(np.float32),
        out=_list_values(table, "hours_stock_status", rows, n_days).astype(np.uint8),
        discount=per_day("discount", np.float32),
        activity=per_day("activity_flag", np.int8),
        holiday=per_day("holiday_flag", np.int8),
    )


def in_till_units(panel: HourlyPanel) -> HourlyPanel:
    """The panel with sales in whole till units (:data:`TILL_UNITS`), as a replay sends them."""
    from dataclasses import replace

    return replace(panel, sales=np.round(panel.sales * TILL_UNITS).astype(np.float32))


def daily_frame(panel: HourlyPanel, units: np.ndarray | None = None) -> pd.DataFrame:
    """Canonical daily history of the panel: ``units`` is the day's sales (or the given
    ``[series, day]`` array, e.g. recovered demand), ``price`` the day's price relative to the
    full price (the data's ``discount``: 1 at full price, 0.7 at 30 % off; it has no unit price),
    so a forecast reads how deep a planned cut is and not only that there is one, ``promo`` is 1
    on a discount or activity day, ``event`` the holiday flag, ``stockout_hours`` the trading hours out of stock and
    ``stockout`` (observed sales only) 1 where the shelf was empty at the last trading hour."""
    s, d = panel.n_series, panel.n_days
    daily = panel.sales.sum(axis=2, dtype=np.float64) if units is None else np.asarray(units)
    promo = ((panel.discount < 1.0) | (panel.activity > 0)).astype(float)
    frame = pd.DataFrame(
        {
            "store_id": np.repeat(panel.store.astype(str), d),
            "sku": np.repeat(panel.product.astype(str), d),
            "date": np.tile(panel.dates, s).astype("datetime64[ns]"),
            "units": np.round(daily.ravel(), 6),
            "price": panel.discount.astype(np.float64).ravel(),
            "promo": promo.ravel(),
            "event": panel.holiday.astype(float).ravel(),
            "stockout_hours": panel.out[:, :, TRADING_HOURS].sum(axis=2).ravel().astype(int),
        }
    )
    if units is None:  # observed sales: a day whose shelf closed empty is censored demand
        frame["stockout"] = panel.out[:, :, TRADING_HOURS[-1]].ravel().astype(int)
    return frame


def availability_labels(panel: HourlyPanel) -> pd.DataFrame:
    """Long hourly ground truth: ``store_id, sku, date, hour, sales, out_of_stock``."""
    s, d = panel.n_series, panel.n_days
    n = s * d * HOURS
    return pd.DataFrame(
        {
            "store_id": np.repeat(panel.store.astype(str), d * HOURS),
            "sku": np.repeat(panel.product.astype(str), d * HOURS),
            "date": np.tile(np.repeat(panel.dates, HOURS), s).astype("datetime64[ns]"),
            "hour": np.tile(np.arange(HOURS), s * d)[:n],
            "sales": panel.sales.ravel(),
            "out_of_stock": panel.out.ravel().astype(bool),
        }
    )


def freshretailnet() -> pd.DataFrame:
    """The canonical daily history of all 50,000 series (see :func:`daily_frame`)."""
    from training.history import validate

    return validate(daily_frame(load_hourly()), source=f"freshretailnet ({DAILY})")
