"""Fulfilment routing across the M5 network: DC only, nearest store with stock, and the router,
on the same online orders (``twin.network_twin``).

What it does:

1. Real daily demand of the 10 M5 stores (CA, TX, WI) for every item (``m5_store_days``: 28
   days; ``--items`` samples fewer, seeded). The first ``--warmup-days`` are the stores'
   history; the rest is the replay.
2. Unit values: each item's mean M5 sell price over the data's weeks where the M5 sample has it,
   else its category's mean in that sample (``m5_sample/sell_prices.csv.gz``).
3. The online channel takes ``--share`` of every store-day's real units (binomial), cut into
   baskets and sent to the state's ten largest cities (``twin.online_orders``).
4. Each store runs the edge's order-up-to rule (``twin.policies.OrderUpToPolicy`` on a
   moving-average forecaster) on its book; books drift from shelves by unrecorded shrink and
   are corrected by rotating counts (``twin.network_twin.ShelfTruth``).
5. The three choosers meet the same orders, shrink and starting books; cost per order counts
   shipping, picking, splits, lateness, cancelled lines, and the stores' lost walk-in margin
   and markdowns beyond DC-only's (``hub.fulfilment_cost.CostModel``).

Usage: ``python benchmarks/routing.py --json out.json [--quick] [--items N] [--share 0.1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402
from configuration.data_dir import require  # noqa: E402
from hub.fulfilment_cost import CostModel  # noqa: E402
from hub.routing import Router  # noqa: E402
from twin.network_places import DCS, STORES  # noqa: E402
from twin.network_twin import (  # noqa: E402
    NetworkData,
    NetworkTwin,
    Scenario,
    ShelfTruth,
    choosers,
    summary,
)
from twin.online_orders import OnlineChannel  # noqa: E402
from twin.policies import MovingAverageForecaster, OrderUpToPolicy  # noqa: E402
from twin.store import StoreConfig  # noqa: E402

GOAL = 0.15


def load_network(items: int | None, seed: int) -> NetworkData:
    """The M5 store days as stores x items x days, and each item's unit value."""
    import pandas as pd

    raw = pd.read_parquet(
        require("m5_store_days/sales_long_d1914_d1941.parquet"),
        columns=["item_id", "cat_id", "store_id", "date", "sales"],
    )
    all_items = np.sort(raw["item_id"].unique())
    if items is not None and items < len(all_items):
        chosen = np.sort(np.random.default_rng(seed).choice(all_items, items, replace=False))
        raw = raw[raw["item_id"].isin(chosen)]
    cube = raw.pivot_table(
        index=["store_id", "item_id"],
        columns="date",
        values="sales",
        aggfunc="sum",
        fill_value=0,
        observed=True,
    )
    stores = sorted(STORES)
    skus = np.array(sorted(raw["item_id"].unique()), dtype=object)
    full = pd.MultiIndex.from_product([stores, skus], names=["store_id", "item_id"])
    cube = cube.reindex(full, fill_value=0)
    units = cube.to_numpy(dtype=float).reshape(len(stores), len(skus), -1)
    dates = np.array(cube.columns, dtype="datetime64[D]")
    prices = pd.read_csv(require("m5_sample/sell_prices.csv.gz"))
    prices["cat"] = prices["item_id"].str.split("_").str[0]
    weeks = prices[prices["wm_yr_wk"] >= prices["wm_yr_wk"].max() - 3]
    per_item = weeks.groupby("item_id")["sell_price"].mean()
    per_cat = weeks.groupby("cat")["sell_price"].mean()
    cats = [s.split("_")[0] for s in skus]
    value = np.array([per_item.get(s, per_cat[c]) for s, c in zip(skus, cats, strict=True)])
    return NetworkData(stores, skus, dates, units, value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="300 items (a smoke run)")
    ap.add_argument("--items", type=int, default=None, help="sample this many items (all)")
    ap.add_argument("--share", type=float, default=0.10, help="online share of real units")
    ap.add_argument("--warmup-days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    items = 300 if args.quick and args.items is None else args.items
    info = machine()
    t0 = time.perf_counter()
    data = load_network(items, args.seed)
    config = StoreConfig()
    channel, truth, cost = OnlineChannel(share=args.share), ShelfTruth(), CostModel()
    scenario = Scenario.draw(data, args.warmup_days, channel, truth, config, seed=args.seed)
    twin = NetworkTwin(
        scenario,
        lambda: OrderUpToPolicy(MovingAverageForecaster(days=args.warmup_days)),
        config,
        cost,
        truth,
    )
    router = Router(cost)
    runs, seconds = {}, {}
    for name, choose in choosers(router).items():
        t1 = time.perf_counter()
        runs[name] = twin.run(name, choose)
        seconds[name] = round(time.perf_counter() - t1, 2)
        print(f"{name}: {runs[name].orders} orders in {seconds[name]} s", flush=True)
    per = summary(runs, cost)
    r, near = per["router"], per["nearest"]
    reduction = 1.0 - r["cost_per_order"] / near["cost_per_order"]
    out = {
        "cost_reduction_vs_nearest": round(reduction, 4),
        "cost_reduction_vs_dc_only": round(
            1.0 - r["cost_per_order"] / per["dc_only"]["cost_per_order"], 4
        ),
        "cost_per_order": {k: v["cost_per_order"] for k, v in per.items()},
        "cancellation_rate": r["cancellation_rate"],
        "nearest_cancellation_rate": near["cancellation_rate"],
        "store_lost_units": r["store_lost_units"],
        "nearest_store_lost_units": near["store_lost_units"],
        "dc_only_store_lost_units": per["dc_only"]["store_lost_units"],
        "orders": r["orders"],
        "split_rate": {k: v["split_rate"] for k, v in per.items()},
        "same_day_share": {k: v["same_day_share"] for k, v in per.items()},
        "markdown_units": {k: v["markdown_units"] for k, v in per.items()},
        "goal": {
            "cost_reduction_at_least": GOAL,
            "met": bool(
                reduction >= GOAL
                and r["cancellation_rate"] <= near["cancellation_rate"]
                and r["store_lost_units"] <= near["store_lost_units"]
            ),
        },
        "policies": per,
        "setup": {
            "data": "m5_store_days (real daily units, 10 stores x items x 28 days)",
            "stores": {s: f"{STORES[s].city}, {STORES[s].state}" for s in data.store_ids},
            "dcs": {d: f"{p.city}, {p.state}" for d, p in DCS.items()},
            "items": len(data.skus),
            "replay_days": int(data.units.shape[2] - args.warmup_days),
            "warmup_days": args.warmup_days,
            "replenishment": "OrderUpToPolicy(MovingAverageForecaster) per store, "
            f"lead {config.lead_time} d, review {config.review_period} d",
            "online_share": channel.share,
            "basket_lines": channel.basket,
            "promised_days": channel.promise,
            "shelf_truth": truth.__dict__,
            "cost_model": cost.__dict__,
            "seed": args.seed,
            "seconds": seconds,
        },
        "machine": {**info, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(out, indent=2, default=str)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
