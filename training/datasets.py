"""Adapters: each real data set in the data dir as canonical long sales history.

Every adapter returns a frame with ``store_id, sku, date, units`` and, where the data has them,
``price``, ``promo`` and ``event`` (1 on a calendar-event day). Files are found only through
:func:`shelfcast.data_dir.require`.

>>> sorted(DATASETS)
['favorita', 'freshretailnet', 'm5_sample', 'm5_store_days', 'online_retail', 'walmart_weekly']
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from shelfcast.data_dir import require
from training.freshretailnet import freshretailnet
from training.history import validate

ONLINE_RETAIL = "online_retail/online_retail_ii_2009-12-01_2011-09-30.parquet"


def online_retail(
    top_skus: int | None = None, countries: tuple[str, ...] | None = ("United Kingdom",)
) -> pd.DataFrame:
    """Daily units per StockCode with each country as a store (UK only by default).

    Cancellations (invoices starting with ``C``) and other negative lines are dropped rather
    than netted: they correct or return earlier orders, often weeks later, and are not negative
    demand on the day they are booked. Non-product codes (postage, fees, manual adjustments:
    codes not starting with a digit) are dropped. ``price`` is the quantity-weighted mean unit
    price of the day's sales. ``top_skus`` keeps the SKUs with the most units overall.
    """
    raw = pd.read_parquet(
        require(ONLINE_RETAIL),
        columns=["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Country"],
    )
    keep = (
        ~raw["Invoice"].astype(str).str.startswith("C") & (raw["Quantity"] > 0) & (raw["Price"] > 0)
    )
    keep &= raw["StockCode"].astype(str).str.match(r"^\d")
    if countries:
        keep &= raw["Country"].isin(countries)
    df = raw.loc[keep]
    df = df.assign(
        store_id=df["Country"].astype(str),
        sku=df["StockCode"].astype(str).str.upper(),
        date=df["InvoiceDate"].dt.normalize(),
        revenue=df["Quantity"] * df["Price"],
    )
    daily = df.groupby(["store_id", "sku", "date"], as_index=False, observed=True).agg(
        units=("Quantity", "sum"), revenue=("revenue", "sum")
    )
    daily["price"] = daily["revenue"] / daily["units"]
    if top_skus:
        volume = daily.groupby("sku")["units"].sum().nlargest(top_skus).index
        daily = daily[daily["sku"].isin(volume)]
    return validate(daily.drop(columns="revenue"), source=f"online_retail ({ONLINE_RETAIL})")


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


def walmart_weekly() -> pd.DataFrame:
    """Weekly sales per store x department (weekly grain: one row per week's Friday); negative
    weeks (net returns) are clipped to 0, holiday weeks are events, markdown 1 is ``promo``."""
    raw = pd.read_parquet(require("walmart_weekly/train_2010-02-05_2012-07-27.parquet"))
    feats = pd.read_parquet(require("walmart_weekly/features.parquet"))
    raw = raw.merge(feats[["Store", "Date", "MarkDown1"]], on=["Store", "Date"], how="left")
    out = pd.DataFrame(
        {
            "store_id": raw["Store"].astype(str),
            "sku": raw["Dept"].astype(str),
            "date": raw["Date"],
            "units": np.clip(raw["Weekly_Sales"].to_numpy(float), 0, None),
            "event": raw["IsHoliday"].astype(float),
            "promo": (raw["MarkDown1"].fillna(0) > 0).astype(float),
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
}


def load_dataset(name: str, **kwargs) -> pd.DataFrame:
    """Canonical history of the named real data set; ``KeyError`` lists the known names."""
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](**kwargs)
