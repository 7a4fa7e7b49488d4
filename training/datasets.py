"""Adapters: each real data set in the data dir as canonical long sales history.

Every adapter returns a frame with ``store_id, sku, date, units`` and, where the data has them,
``price``, ``promo`` and ``event`` (1 on a calendar-event day). Files are found only through
:func:`configuration.data_dir.require`.

Weekly data sets (``walmart_weekly``, ``dunnhumby_batf``) keep one row per week, dated by the
week's own day; the feature store learns the grain from the dates. :data:`KNOWN_AHEAD` names the
data sets whose ``price``/``promo`` are planned (a shelf price, a promo calendar, a markdown
plan), so a forecast may read them on its target step.

>>> sorted(DATASETS)  # doctest: +NORMALIZE_WHITESPACE
['dunnhumby_batf', 'favorita', 'freshretailnet', 'm5_history', 'm5_sample', 'm5_store_days',
 'online_retail', 'walmart_weekly']
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from configuration.data_dir import require
from training.freshretailnet import freshretailnet
from training.history import validate

ONLINE_RETAIL = "online_retail/online_retail_ii_2009-12-01_2011-09-30.parquet"


def net_cancellations(lines: pd.DataFrame) -> pd.DataFrame:
    """Invoice lines with each cancellation netted against the order it cancels.

    A cancellation (an invoice starting with ``C``, negative quantity) takes its units off the
    latest earlier order line of the same customer and StockCode, on that order's day: an order
    placed and cancelled (C541433 cancels a 74,215-unit order minutes after it) is no demand at
    all, not demand on the order's day. A cancellation larger than its order leaves that order at
    0; one with no customer, or no earlier order in the file (it cancels an order from before the
    data), has nothing to net against and is dropped. Returns the order lines only (quantities
    reduced, none negative) in their original order.

    >>> t = pd.to_datetime(["2011-12-09 09:15", "2011-12-09 09:27"])
    >>> lines = pd.DataFrame({"Invoice": ["581483", "C581484"], "StockCode": ["23843"] * 2,
    ...     "Quantity": [80995, -80995], "InvoiceDate": t, "Customer ID": [16446, 16446]})
    >>> net_cancellations(lines)["Quantity"].tolist()
    [0]
    """
    cancel = lines["Invoice"].astype(str).str.startswith("C") & (lines["Quantity"] < 0)
    orders = lines.loc[~cancel & (lines["Quantity"] > 0)].copy()
    cancels = lines.loc[cancel & lines["Customer ID"].notna()]
    if cancels.empty:
        return orders
    on = ["Customer ID", "StockCode"]
    left = cancels[[*on, "InvoiceDate", "Quantity"]].sort_values("InvoiceDate")
    right = orders.loc[orders["Customer ID"].notna(), [*on, "InvoiceDate"]]
    right = right.assign(order_line=right.index).sort_values("InvoiceDate")
    for col in on:  # merge_asof needs the same dtype on both sides of ``by``
        left[col], right[col] = left[col].astype(str), right[col].astype(str)
    matched = pd.merge_asof(
        left, right, on="InvoiceDate", by=on, direction="backward", allow_exact_matches=True
    ).dropna(subset=["order_line"])
    taken = matched.groupby("order_line")["Quantity"].sum()  # negative
    rows = taken.index.astype(orders.index.dtype)
    orders.loc[rows, "Quantity"] = np.maximum(
        orders.loc[rows, "Quantity"].to_numpy() + taken.to_numpy(), 0
    )
    return orders


def online_retail(
    top_skus: int | None = None, countries: tuple[str, ...] | None = ("United Kingdom",)
) -> pd.DataFrame:
    """Daily units per StockCode with each country as a store (UK only by default).

    Cancellations are netted against the order they cancel (:func:`net_cancellations`); other
    negative lines (stock adjustments without an invoice to cancel) are dropped. Non-product
    codes (postage, fees, manual adjustments: codes not starting with a digit) are dropped.
    ``price`` is the quantity-weighted mean unit price of the day's sales; a day whose orders
    were all cancelled keeps a row with 0 units. ``top_skus`` keeps the SKUs with the most net
    units overall (:func:`top_skus_by_units`).
    """
    raw = pd.read_parquet(
        require(ONLINE_RETAIL),
        columns=[
            "Invoice",
            "StockCode",
            "Quantity",
            "InvoiceDate",
            "Price",
            "Country",
            "Customer ID",
        ],
    )
    keep = (raw["Price"] > 0) & raw["StockCode"].astype(str).str.match(r"^\d")
    if countries:
        keep &= raw["Country"].isin(countries)
    df = net_cancellations(raw.loc[keep])
    df = df.assign(
        store_id=df["Country"].astype(str),
        sku=df["StockCode"].astype(str).str.upper(),
        date=df["InvoiceDate"].dt.normalize(),
        revenue=df["Quantity"] * df["Price"],
        listed=df["Price"],
    )
    daily = df.groupby(["store_id", "sku", "date"], as_index=False, observed=True).agg(
        units=("Quantity", "sum"), revenue=("revenue", "sum"), listed=("listed", "mean")
    )
    # A fully cancelled day has no quantity to weight by: its listed price stands in.
    sold = daily["units"] > 0
    daily["price"] = np.where(
        sold, daily["revenue"] / daily["units"].where(sold, 1), daily["listed"]
    )
    daily["units"] = daily["units"].astype(np.float64)
    if top_skus:
        daily = daily[daily["sku"].isin(top_skus_by_units(daily, top_skus))]
    return validate(
        daily.drop(columns=["revenue", "listed"]), source=f"online_retail ({ONLINE_RETAIL})"
    )


def top_skus_by_units(frame: pd.DataFrame, n: int, before=None) -> pd.Index:
    """The ``n`` SKUs with the most units in ``frame`` (ties broken by name, so the choice is
    reproducible), counting only days before ``before`` when given: a twin or a backtest that
    picks its SKUs must not look at its own test weeks. The one ranking rule for ``train``,
    ``forecast`` and ``simulate``.

    >>> f = pd.DataFrame({"sku": ["A", "B", "B", "C"], "units": [5.0, 1.0, 9.0, 5.0],
    ...                   "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01",
    ...                                           "2024-01-01"])})
    >>> list(top_skus_by_units(f, 2)), list(top_skus_by_units(f, 2, before="2024-02-01"))
    (['B', 'A'], ['A', 'C'])
    """
    if before is not None:
        frame = frame[pd.to_datetime(frame["date"]) < pd.Timestamp(before)]
    totals = frame.groupby("sku", observed=True)["units"].sum().clip(lower=0).sort_index()
    return totals.sort_values(ascending=False, kind="stable").index[:n]


def _m5_calendar(path: str) -> pd.DataFrame:
    cal = pd.read_csv(require(path), parse_dates=["date"])
    cal["event"] = (cal["event_name_1"].notna() | cal["event_name_2"].notna()).astype(float)
    return cal


def m5_sample() -> pd.DataFrame:
    """The 10 full-history M5 series, wide d_1..d_1913 to long, with events and weekly prices."""
    wide = pd.read_csv(require("m5_sample/sales_train_validation.csv.gz"))
    cal = _m5_calendar("m5_sample/calendar.csv.gz")
    days = [c for c in wide.columns if c.startswith("d_")]
    long = wide.melt(
        id_vars=["item_id", "store_id"], value_vars=days, var_name="d", value_name="units"
    )
    long = long.merge(cal[["d", "date", "wm_yr_wk", "event"]], on="d", how="left")
    prices = pd.read_csv(require("m5_sample/sell_prices.csv.gz"))
    long = long.merge(prices, on=["store_id", "item_id", "wm_yr_wk"], how="left")
    # M5 lists a series from d_1 even before the item was sold; it starts at its first price.
    long = long[long["sell_price"].notna()]
    out = long.rename(columns={"item_id": "sku", "sell_price": "price"})
    return validate(out[["store_id", "sku", "date", "units", "price", "event"]], source="m5_sample")


def m5_store_days() -> pd.DataFrame:
    """All 30,490 M5 item x store series for their 28 days, with calendar events."""
    raw = pd.read_parquet(require("m5_store_days/sales_long_d1914_d1941.parquet"))
    event = (raw["event_name_1"].notna() | raw["event_name_2"].notna()).astype(float)
    out = pd.DataFrame(
        {
            "store_id": raw["store_id"].astype(str),
            "sku": raw["item_id"].astype(str),
            "date": raw["date"],
            "units": raw["sales"].astype(float),
            "event": event,
        }
    )
    return validate(out, source="m5_store_days")


def favorita() -> pd.DataFrame:
    """Daily receipt counts per store as ``sku = "ALL"``, with national holidays as events and
    the oil price as ``price`` (forward-filled over the days it is missing)."""
    tx = pd.read_csv(require("favorita/transactions.csv.gz"), parse_dates=["date"])
    hol = pd.read_csv(require("favorita/holidays_events.csv.gz"), parse_dates=["date"])
    oil = pd.read_csv(require("favorita/oil.csv.gz"), parse_dates=["date"])
    national = hol.loc[(hol["locale"] == "National") & ~hol["transferred"].astype(bool), "date"]
    oil = oil.set_index("date")["dcoilwtico"].asfreq("D").ffill().bfill()
    out = pd.DataFrame(
        {
            "store_id": tx["store_nbr"].astype(str),
            "sku": "ALL",
            "date": tx["date"],
            "units": tx["transactions"].astype(float),
            "event": tx["date"].isin(set(national)).astype(float),
            "price": tx["date"].map(oil).astype(float),
        }
    )
    return validate(out, source="favorita")


M5_HISTORY = "m5_history/sales_944_series.parquet"
DUNNHUMBY = "dunnhumby_batf/transactions.parquet"
_WALMART_MARKDOWNS = [f"MarkDown{i}" for i in range(1, 6)]


def m5_history() -> pd.DataFrame:
    """The 944 full-history M5 item x store series (10 stores), daily from each series' first
    sale, with the M5 calendar: ``event`` on a named event day, ``promo`` on the store's state's
    SNAP day (food stamps, a demand lift the calendar fixes in advance). ``sku`` is the item id;
    ``category`` (FOODS, HOUSEHOLD, HOBBIES) rides along for reports by category."""
    raw = pd.read_parquet(require(M5_HISTORY))
    cal = _m5_calendar("m5_sample/calendar.csv.gz")
    dates = pd.to_datetime(raw["date"], format="%Y-%m-%d")
    day = pd.Index(cal["date"]).get_indexer(dates)
    if (day < 0).any():
        raise ValueError(f"{M5_HISTORY}: {dates[day < 0].iloc[0].date()} is not in the M5 calendar")
    states = sorted(raw["state_id"].unique())
    snap_by_state = cal[[f"snap_{s}" for s in states]].to_numpy(float)[day]
    state = pd.Categorical(raw["state_id"], categories=states).codes
    snap = snap_by_state[np.arange(len(raw)), state]
    event = cal["event"].to_numpy(float)[day]
    out = pd.DataFrame(
        {
            "store_id": raw["store_id"].astype(str),
            "sku": raw["item_id"].astype(str),
            "date": dates,
            "units": raw["sales"].astype(float),
            "promo": snap,
            "event": event,
            "category": raw["cat_id"].astype(str),
        }
    )
    return validate(out, source=f"m5_history ({M5_HISTORY})")


def dunnhumby_batf() -> pd.DataFrame:
    """Weekly units per store x UPC (week ending Wednesday) with the shelf ``price`` and
    ``promo`` = 1 in a week on feature (mailer), on display or on a temporary price reduction.

    The file has rows only for weeks with sales. A missing week after a series' first becomes
    a row of 0 units, no promotion and the last shelf price: left without a price, a planned
    price known only on weeks that sold would tell a forecast which weeks sold."""
    raw = pd.read_parquet(require(DUNNHUMBY))
    products = pd.read_csv(require("dunnhumby_batf/products.csv"), dtype={"upc_id": str})
    promo = (raw["feature"].fillna(0) + raw["display"].fillna(0) + raw["tpr_only"].fillna(0)) > 0
    out = pd.DataFrame(
        {
            "store_id": raw["store_id"].astype(str),
            "sku": raw["upc_id"].astype(str),
            "date": pd.to_datetime(raw["week_end_date"]).astype("datetime64[ns]"),
            "units": raw["units"].astype(float).clip(lower=0),
            "price": raw["price"].astype(float).where(raw["price"] > 0),  # 0: not recorded
            "promo": promo.astype(float),
        }
    )
    out = _every_week(out)
    out["category"] = out["sku"].map(products.set_index("upc_id")["category"]).astype(str)
    return validate(out, source=f"dunnhumby_batf ({DUNNHUMBY})")


def _every_week(weeks: pd.DataFrame) -> pd.DataFrame:
    """Every week of each series from its first row: missing weeks 0 units, no promotion, the
    last known price carried forward."""
    wide = weeks.set_index(["store_id", "sku", "date"])[["units", "price", "promo"]].unstack()
    units = wide["units"]
    started = units.notna().cumsum(axis=1) > 0
    dense = pd.DataFrame(
        {
            "units": units.fillna(0.0).where(started).stack(),
            "price": wide["price"].ffill(axis=1).where(started).stack(future_stack=True),
            "promo": wide["promo"].fillna(0.0).where(started).stack(),
        }
    ).dropna(subset=["units"])
    return dense.reset_index()


def walmart_weekly() -> pd.DataFrame:
    """Weekly sales per store x department (weekly grain: one row per week's Friday); negative
    weeks (net returns) are clipped to 0, holiday weeks are events, a week with any markdown
    (MarkDown1-5, published from November 2011) is ``promo``."""
    raw = pd.read_parquet(require("walmart_weekly/train_2010-02-05_2012-07-27.parquet"))
    feats = pd.read_parquet(require("walmart_weekly/features.parquet"))
    raw = raw.merge(feats[["Store", "Date", *_WALMART_MARKDOWNS]], on=["Store", "Date"], how="left")
    markdown = (raw[_WALMART_MARKDOWNS].fillna(0) > 0).any(axis=1)
    out = pd.DataFrame(
        {
            "store_id": raw["Store"].astype(str),
            "sku": raw["Dept"].astype(str),
            "date": raw["Date"],
            "units": np.clip(raw["Weekly_Sales"].to_numpy(float), 0, None),
            "event": raw["IsHoliday"].astype(float),
            "promo": markdown.astype(float),
        }
    )
    return validate(out, source="walmart_weekly")


DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "online_retail": online_retail,
    "m5_sample": m5_sample,
    "m5_store_days": m5_store_days,
    "favorita": favorita,
    "walmart_weekly": walmart_weekly,
    "freshretailnet": freshretailnet,
    "m5_history": m5_history,
    "dunnhumby_batf": dunnhumby_batf,
}

# Data sets whose price and promo are planned ahead (see the module docstring).
KNOWN_AHEAD = frozenset(
    {"m5_sample", "m5_history", "walmart_weekly", "dunnhumby_batf", "freshretailnet"}
)


# SKUs ``online_retail`` keeps when a command is not told: ``train`` (quick or full) records its
# choice in the bundle, and ``forecast`` of that bundle on the same data set selects it again.
ONLINE_RETAIL_TOP_SKUS = 300
ONLINE_RETAIL_TOP_SKUS_QUICK = 30


def selection(name: str, top_skus: int | None) -> dict:
    """The loader options that select a data set's series: ``top_skus`` for ``online_retail``
    (default :data:`ONLINE_RETAIL_TOP_SKUS`), nothing for data sets used whole. ``train``
    writes it to the bundle's metadata as ``data_selection``; ``forecast`` reads it back.

    >>> selection("online_retail", None), selection("m5_sample", 5)
    ({'top_skus': 300}, {})
    """
    if name == "online_retail":
        return {"top_skus": int(top_skus or ONLINE_RETAIL_TOP_SKUS)}
    return {}


def load_dataset(name: str, **kwargs) -> pd.DataFrame:
    """Canonical history of the named real data set; ``KeyError`` lists the known names."""
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](**kwargs)
