"""Turn the real data into a timestamped edge event stream for one store (a digital-twin feed).

Two sources (see ``../shared/data/README.md``):

- ``online_retail``: every invoice line of one country, at its real minute (UK local time).
  Positive lines are sales, ``C`` invoices are returns (cancellations, ``reason="cancellation"``),
  other negative lines are stock adjustments (their description is the reason). Non-product codes
  (postage, fees, discounts, manual lines) are left out.
- ``m5``: Walmart M5 daily unit sales of one store (or several, pooled into one gateway with
  ``sku = item@store`` on the first store's clock); each day's units are spread one by one over opening hours at seconds
  drawn from a seeded generator, so the stream is the same for the same seed.

The data has no stock levels. With ``restock=True`` the replayer adds, and labels as synthetic
(``reason="synthetic ..."``), an opening cycle count per SKU (its first week's sales) and a
receipt every 7 days at 06:00 covering the next week's sales, so the book stays realistic.

Events are dicts in the edge event schema (``edge_runtime.store.events``), ordered by event time then
``event_id``; ``write_jsonl`` writes them one per line.

>>> import pandas as pd
>>> frame = pd.DataFrame({"sku": ["A"], "date": pd.to_datetime(["2016-04-25"]), "units": [2]})
>>> [e["event_time"] for e in spread_daily(frame, "S1", "America/Chicago", seed=0)]
['2016-04-25T16:55:02-05:00', '2016-04-25T19:54:31-05:00']
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from configuration.command_options import positive_int
from configuration.data_dir import DataMissingError, require
from edge_runtime.config import STORE_ID_CHARS, store_id_problem

ONLINE_RETAIL = "online_retail/online_retail_ii_2009-12-01_2011-09-30.parquet"
M5_STORE_DAYS = "m5_store_days/sales_long_d1914_d1941.parquet"
M5_TZ = {"CA": "America/Los_Angeles", "TX": "America/Chicago", "WI": "America/Chicago"}
OPEN_HOUR, CLOSE_HOUR = 8, 22
RESTOCK_HOUR = 6
_NOT_IN_STORE_ID = re.compile(rf"[^{STORE_ID_CHARS}]+")
_COLUMNS = ["event_id", "store_id", "sku", "type", "qty", "event_time", "source"]


def store_id_for(name: str) -> str:
    """A store id the gateway's configuration accepts, made from a data set's store name:
    each run of other characters becomes ``_``, and the result is cut to 64 characters.

    >>> store_id_for("United Kingdom"), store_id_for("CA_1-CA_2")
    ('United_Kingdom', 'CA_1-CA_2')
    """
    return _NOT_IN_STORE_ID.sub("_", name).strip("_")[:64] or "store"


def _iso(ts: pd.Series) -> pd.Series:
    """tz-aware timestamps as ISO-8601 with a ``+hh:mm`` offset, vectorised (strftime is slow)."""
    wall = ts.dt.tz_localize(None)
    utc = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    offset = ((wall - utc).dt.total_seconds() // 60).astype("int64")
    names = {
        m: f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in offset.unique()
    }
    text = np.datetime_as_string(wall.to_numpy(dtype="datetime64[s]"), unit="s")
    return pd.Series(text, index=ts.index, dtype=object) + offset.map(names)


_OPTIONAL = ("order_id", "unit_price", "reason")


def _records(frame: pd.DataFrame) -> list[dict]:
    """Sort by event time then id; events as dicts without empty optional fields."""
    frame = frame.sort_values(["_ts", "event_id"], kind="stable")
    times = _iso(frame["_ts"]).tolist()
    required = [frame[c].tolist() for c in ("event_id", "store_id", "sku", "type", "qty", "source")]
    optional = [(c, frame[c].tolist()) for c in _OPTIONAL if c in frame.columns]
    out = []
    for i, (eid, store, sku, kind, qty, source) in enumerate(zip(*required, strict=True)):
        e = {"event_id": eid, "store_id": store, "sku": sku, "type": kind, "qty": qty,
             "event_time": times[i], "source": source}  # fmt: skip
        for name, values in optional:
            v = values[i]
            if v is not None and v == v:  # drops None and NaN
                e[name] = v
        out.append(e)
    return out


def online_retail_events(
    country: str | None = "United Kingdom",
    store_id: str = "UK",
    limit: int | None = None,
    restock: bool = False,
) -> list[dict]:
    """Events of one country of Online Retail II (``None``: every country, pooled as one store)
    at their real timestamps (see module doc); ``limit`` keeps the first events by event time."""
    raw = pd.read_parquet(require(ONLINE_RETAIL))
    if country is not None:
        raw = raw[raw["Country"] == country]
    if raw.empty:
        raise ValueError(f"no Online Retail lines for country {country!r}")
    code = raw["StockCode"].astype(str)
    raw = raw[code.str.match(r"^\d{5}") & (raw["Quantity"] != 0)]
    invoice = raw["Invoice"].astype(str)
    qty = raw["Quantity"].astype("int64")
    kind = np.where(invoice.str.startswith("C"), "return", np.where(qty > 0, "sale", "adjustment"))
    reason = np.where(
        kind == "return",
        "cancellation",
        np.where(kind == "adjustment", raw["Description"].fillna("").astype(str), None),
    )
    frame = pd.DataFrame(
        {
            "event_id": "OR-" + invoice + "-" + raw.index.astype(str),
            "store_id": store_id,
            "sku": raw["StockCode"].astype(str).str.upper(),
            "type": kind,
            "qty": np.where(kind == "return", -qty, qty),
            "source": "pos",
            "order_id": invoice,
            "unit_price": raw["Price"].astype(float).where(kind != "adjustment"),
            "reason": pd.Series(reason, index=raw.index).replace("", "stock adjustment"),
            "_ts": raw["InvoiceDate"].dt.tz_localize(
                "Europe/London", ambiguous=True, nonexistent="shift_forward"
            ),
        }
    )
    if restock:
        frame = pd.concat([frame, _restock(frame, store_id)], ignore_index=True)
    frame = frame.sort_values(["_ts", "event_id"], kind="stable")
    if limit is not None:
        frame = frame.head(limit)
    return _records(frame)


def m5_frame(stores: Iterable[str] | None = None) -> pd.DataFrame:
    """M5 store-day sales as ``sku, store, date, units`` (``sku = item@store``), sorted."""
    m5 = pd.read_parquet(require(M5_STORE_DAYS), columns=["item_id", "store_id", "date", "sales"])
    if stores is not None:
        wanted = list(stores)
        unknown = set(wanted) - set(m5["store_id"].astype(str).unique())
        if unknown:
            raise ValueError(f"unknown M5 store(s) {sorted(unknown)}")
        m5 = m5[m5["store_id"].isin(wanted)]
    frame = pd.DataFrame(
        {
            "sku": m5["item_id"].astype(str) + "@" + m5["store_id"].astype(str),
            "store": m5["store_id"].astype(str),
            "date": m5["date"],
            "units": m5["sales"].astype("int64"),
        }
    )
    return frame.sort_values(["sku", "date"], kind="stable").reset_index(drop=True)


def spread_daily(
    frame: pd.DataFrame, store_id: str, tz: str, seed: int = 0, restock: bool = False
) -> list[dict]:
    """Daily ``sku, date, units`` rows as one sale event per unit at a seeded second of opening
    hours (``OPEN_HOUR``..``CLOSE_HOUR`` local time in ``tz``)."""
    frame = frame[frame["units"] > 0].reset_index(drop=True)
    units = frame["units"].to_numpy()
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(len(frame)), units)
    seconds = rng.integers(0, (CLOSE_HOUR - OPEN_HOUR) * 3600, size=len(rows))
    unit_no = np.arange(len(rows)) - np.repeat(np.cumsum(units) - units, units)
    sales = frame.iloc[rows].reset_index(drop=True)
    local = sales["date"] + pd.to_timedelta(OPEN_HOUR * 3600 + seconds, unit="s")
    sales = pd.DataFrame(
        {
            "event_id": "M5-" + sales["sku"] + "-" + sales["date"].dt.strftime("%Y%m%d")
            + "-" + pd.Series(unit_no).astype(str),
            "store_id": store_id,
            "sku": sales["sku"],
            "type": "sale",
            "qty": 1,
            "source": "pos",
            "_ts": local.dt.tz_localize(tz, ambiguous=True, nonexistent="shift_forward"),
        }
    )  # fmt: skip
    if restock:
        sales = pd.concat([sales, _restock(sales, store_id)], ignore_index=True)
    return _records(sales)


def m5_events(
    stores: Iterable[str] = ("CA_1",),
    store_id: str | None = None,
    seed: int = 0,
    restock: bool = True,
    skus: Iterable[str] | None = None,
) -> list[dict]:
    """M5 store days of ``stores`` as one gateway's stream (see module doc); the default
    ``store_id`` is the stores joined by ``-`` (``CA_1-CA_2``)."""
    stores = list(stores)
    frame = m5_frame(stores)
    if skus is not None:
        frame = frame[frame["sku"].isin(set(skus))]
    # One gateway keeps one clock: pooled stores use the first store's time zone.
    tz = M5_TZ[stores[0][:2]]
    store_id = store_id or store_id_for("-".join(stores))
    return spread_daily(frame, store_id, tz, seed=seed, restock=restock)


def _restock(events: pd.DataFrame, store_id: str) -> pd.DataFrame:
    """Synthetic opening count and weekly receipts covering each SKU's next week of sales."""
    sold = events[events["type"] == "sale"][["sku", "qty", "_ts"]]
    first = sold.groupby("sku")["_ts"].transform("min")
    start = first.dt.normalize()
    week = ((sold["_ts"] - start).dt.days // 7).astype("int64")
    weekly = (
        sold.assign(week=week, start=start).groupby(["sku", "week"], as_index=False)
        .agg(qty=("qty", "sum"), start=("start", "first"))
    )  # fmt: skip
    at = weekly["start"] + pd.to_timedelta(weekly["week"] * 7, unit="D")
    at = at + pd.Timedelta(hours=RESTOCK_HOUR - 24)  # the evening before the week opens
    opening = weekly["week"] == 0
    kind = np.where(opening, "cycle_count", "receipt")
    return pd.DataFrame(
        {
            "event_id": np.where(opening, "COUNT-", "RCPT-") + weekly["sku"] + "-w"
            + weekly["week"].astype(str),
            "store_id": store_id,
            "sku": weekly["sku"],
            "type": kind,
            "qty": weekly["qty"].astype("int64"),
            "source": np.where(opening, "count", "wms"),
            "reason": np.where(opening, "synthetic opening count", "synthetic weekly receipt"),
            "_ts": at,
        }
    )  # fmt: skip


def write_jsonl(events: Iterable[dict], path: str | Path) -> int:
    """Write events as JSON lines; returns how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for e in events:
            out.write(json.dumps(e, separators=(",", ":")) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as src:
        for line in src:
            if line.strip():
                yield json.loads(line)


def _store_id(text: str) -> str:
    if problem := store_id_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def add_arguments(parser) -> None:  # `shelfcast replay`
    parser.add_argument("--dataset", choices=["online_retail", "m5"], default="m5")
    parser.add_argument("--store", default=None,
                        help="M5 store(s), comma-separated (default CA_1); "
                             "Online Retail country (default United Kingdom)")  # fmt: skip
    parser.add_argument("--store-id", type=_store_id, default=None,
                        help="store_id written into the events, as the gateway accepts it: 1-64 "
                             "of A-Z a-z 0-9 _ . - (default: the store or country name with "
                             "other characters as _, e.g. United_Kingdom)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed for spreading daily units")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="first N events by event time")  # fmt: skip
    parser.add_argument("--no-restock", action="store_true",
                        help="leave out the synthetic opening counts and weekly receipts")  # fmt: skip
    parser.add_argument("--out", required=True, help="JSON-lines file to write")


def run(args) -> int:
    try:
        events, store_id = _events(args)
    except (DataMissingError, ValueError) as err:
        print(f"shelfcast replay: {err}", file=sys.stderr)
        return 1
    if args.store_id is None:
        print(f"store_id {store_id} (set --store-id to choose another)", file=sys.stderr)
    n = write_jsonl(events, args.out)
    kinds = pd.Series([e["type"] for e in events]).value_counts().to_dict()
    print(f"wrote {n} events of {len({e['sku'] for e in events})} SKUs to {args.out}: {kinds}")
    if events:
        print(f"event time {events[0]['event_time']} .. {events[-1]['event_time']}")
    return 0


def _events(args) -> tuple[list[dict], str]:
    if args.dataset == "m5":
        stores = (args.store or "CA_1").split(",")
        store_id = args.store_id or store_id_for("-".join(stores))
        events = m5_events(stores, store_id, seed=args.seed, restock=not args.no_restock)
        return events[: args.limit], store_id
    country = args.store or "United Kingdom"
    store_id = args.store_id or store_id_for(country)
    events = online_retail_events(country, store_id, limit=args.limit, restock=not args.no_restock)
    return events, store_id
