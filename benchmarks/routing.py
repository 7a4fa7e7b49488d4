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
4. Each store runs the deployed edge engine on its book (``twin.gateway_engine.GatewayPolicy``:
   the gateway's daily sales, day close and decision policy) with a bundle trained on the
   ``m5_history`` series up to the day before the replay (trained once per replay start and
   training code, ``benchmarks.twin.training_code_digest``, and kept in
   ``var/bench/routing_bundle_m5_<cutoff>``; ``--bundle`` names another, refused when its
   training data reach the replay); ``--stores order_up_to`` runs the edge's order-up-to
   rule on a moving-average forecast instead. Books drift from shelves by unrecorded shrink and are
   corrected by rotating counts (``twin.network_twin.ShelfTruth``). The hub reads each store's
   demand from the forecast the store orders on.
5. The three choosers meet the same orders, shrink and starting books; cost per order counts
   shipping, picking, splits, lateness, cancelled lines, and the stores' lost walk-in margin
   and markdowns beyond DC-only's (``hub.fulfilment_cost.CostModel``). Every chooser's
   same-day parcels are billed by the day's courier runs (``hub.courier_runs``: a store's van
   to a city carries each further parcel for a stop), or each alone with ``--tariff
   per-parcel``; the JSON prices the same plans per parcel too.
6. ``--bounds`` runs the router three more times: shown the real shelves, shown the walk-in
   demand to come, and blind to the store terms (what a perfect stock feed or forecast could
   add, and what the store terms add).

The scored window is the last 14 days (2016-05-09 .. 05-22). The router's own parameters are
tuned on the validation slice before it, ``--days 14 --warmup-days 7`` (replay 2016-05-02 ..
05-08, its own bundle trained to 2016-05-01), never on the scored window.

Usage: ``python benchmarks/routing.py --json out.json [--quick] [--items N] [--share 0.1]
[--stores gateway|order_up_to] [--bundle DIR] [--days N] [--bounds] [--tariff runs|per-parcel]
[--run-fill N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402
from configuration.data_dir import require  # noqa: E402
from hub.courier_runs import TARIFFS  # noqa: E402
from hub.fulfilment_cost import CostModel  # noqa: E402
from hub.routing import Router  # noqa: E402
from twin.gateway_engine import GatewayPolicy  # noqa: E402
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
# The stores' bundle goes here, suffixed with its cutoff: one per replay start (scored, validation).
BUNDLE_DIR = ROOT / "var" / "bench" / "routing_bundle_m5"
BUNDLE_YEARS = 3  # of history before the replay: the year features need one, the fit is ~5x faster
BUNDLE_SOURCE = f"m5_history 944 item x store series, units only, last {BUNDLE_YEARS} years"


def network_bundle(first_replay_day: np.datetime64, trees: int, path: Path | None) -> tuple:
    """The stores' bundle: ``path``, or one trained on ``m5_history`` up to the day before the
    replay, over its last ``BUNDLE_YEARS`` (``benchmarks.twin.bundle_for``, reused once
    trained). Units only: the gateway feeds its day close sales events, without the SNAP and
    event calendar the file carries.
    A bundle whose training data reach the replay is refused (it would know the test days)."""
    from benchmarks.twin import bundle_for
    from training.datasets import m5_history

    cutoff = first_replay_day - np.timedelta64(1, "D")
    if path is None:
        frame = m5_history().drop(columns=["promo", "event", "category"])
        first = cutoff - np.timedelta64(364 * BUNDLE_YEARS, "D")
        frame = frame[frame["date"] > np.datetime64(first, "ns")]
        out = BUNDLE_DIR.with_name(f"{BUNDLE_DIR.name}_{str(cutoff).replace('-', '')}")
        path, meta = bundle_for(frame, cutoff, out, trees, BUNDLE_SOURCE, folds=0)
    else:
        meta = json.loads((path / "metadata.json").read_text())
    end = np.datetime64(str(meta.get("training_data", {}).get("end", "9999-12-31"))[:10], "D")
    if end > cutoff:
        raise SystemExit(f"bundle {path}: trained on data to {end}, the replay starts {cutoff + 1}")
    return path, meta


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


def router_bounds(twin: NetworkTwin, router: Router, runs: dict, cost: CostModel, seconds: dict):
    """The router again, shown the real shelves (``shelf``) or the walk-in demand to come
    (``future``), and blind to the store terms (``direct_only``: risk, lost sales and markdown
    priced at zero): bounds of what a better stock feed or forecast could add, and what the
    store terms add. Each is charged by the same cost model on the same orders."""
    blind = Router(
        replace(cost, cancel_line=0.0, store_margin=0.0, markdown_depth=0.0),
        run_fill=router.run_fill,
    )
    variants = {
        "router_sees_shelf": (router.plan, "shelf"),
        "router_sees_future": (router.plan, "future"),
        "router_direct_only": (blind.plan, "book"),
    }
    out = {}
    for name, (choose, sees) in variants.items():
        t1 = time.perf_counter()
        run = twin.run(name, choose, sees)
        seconds[name] = round(time.perf_counter() - t1, 2)
        per = summary({**runs, name: run}, cost)
        mine, near = per[name], per["nearest"]
        keys = ("cost_per_order", "direct_cost_per_order", "cancellation_rate", "store_lost_units")
        out[name] = {
            "cost_reduction_vs_nearest": round(
                1.0 - mine["cost_per_order"] / near["cost_per_order"], 4
            ),
            **{k: mine[k] for k in (*keys, "markdown_cost_per_order", "same_day_share")},
        }
        print(f"{name}: {out[name]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="300 items (a smoke run)")
    ap.add_argument("--items", type=int, default=None, help="sample this many items (all)")
    ap.add_argument("--share", type=float, default=0.10, help="online share of real units")
    ap.add_argument("--warmup-days", type=int, default=14)
    ap.add_argument(
        "--days",
        type=int,
        default=None,
        help="keep only the network's first DAYS days (all 28): with --warmup-days 7, --days 14 "
        "is the validation slice before the scored window, for tuning the router",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--stores",
        choices=("gateway", "order_up_to"),
        default="gateway",
        help="the stores' replenishment: the deployed gateway engine, or the order-up-to rule "
        "on a moving-average forecast",
    )
    ap.add_argument(
        "--bounds",
        action="store_true",
        help="also run the router shown the real shelves, shown the demand to come, and "
        "blind to the store terms: what better information or the store terms are worth",
    )
    ap.add_argument(
        "--tariff",
        choices=TARIFFS,
        default="runs",
        help="last-mile pricing for every policy: a store's same-day parcels share its van runs "
        "to a city (runs), or each parcel is a courier trip of its own (per-parcel, as before)",
    )
    ap.add_argument(
        "--run-fill",
        type=float,
        default=Router.run_fill,
        help="the router's expected drops per store van (0: price only what earlier orders' "
        "runs make cheaper)",
    )
    ap.add_argument(
        "--no-run-outlook",
        action="store_true",
        help="do not show the router what earlier days' runs carried to each city (it then "
        "expects every van to fill, --run-fill)",
    )
    ap.add_argument("--bundle", type=Path, help="the gateways' bundle (default: train one)")
    ap.add_argument("--trees", type=int, default=100, help="trees per model of that bundle")
    args = ap.parse_args(argv)
    items = 300 if args.quick and args.items is None else args.items
    info = machine()
    t0 = time.perf_counter()
    data = load_network(items, args.seed)
    if args.days is not None:
        if not args.warmup_days < args.days <= len(data.dates):
            raise SystemExit(f"--days {args.days}: needs --warmup-days < it <= {len(data.dates)}")
        data = replace(data, dates=data.dates[: args.days], units=data.units[:, :, : args.days])
    config = StoreConfig()
    channel, truth, cost = OnlineChannel(share=args.share), ShelfTruth(), CostModel()
    scenario = Scenario.draw(data, args.warmup_days, channel, truth, config, seed=args.seed)
    bundle: dict = {}
    if args.stores == "gateway":
        path, meta = network_bundle(data.dates[args.warmup_days], args.trees, args.bundle)
        bundle = {"path": str(path), "model_version": meta.get("model_version"),
                  "training_data": meta.get("training_data")}  # fmt: skip

        def make_policy():
            return GatewayPolicy(path)
    else:

        def make_policy():
            return OrderUpToPolicy(MovingAverageForecaster(days=args.warmup_days))

    twin = NetworkTwin(
        scenario, make_policy, config, cost, truth, args.tariff, not args.no_run_outlook
    )
    router = Router(cost, run_fill=args.run_fill)
    runs, seconds = {}, {}
    for name, choose in choosers(router).items():
        t1 = time.perf_counter()
        runs[name] = twin.run(name, choose)
        seconds[name] = round(time.perf_counter() - t1, 2)
        print(f"{name}: {runs[name].orders} orders in {seconds[name]} s", flush=True)
    per = summary(runs, cost)
    r, near = per["router"], per["nearest"]
    bounds = router_bounds(twin, router, runs, cost, seconds) if args.bounds else None
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
        "tariff": args.tariff,
        # The same plans, every parcel priced on its own: what the per-parcel tariff would bill
        # them (the router's plans chose on this run's tariff; `--tariff per-parcel` reruns all).
        "priced_per_parcel": {
            "cost_per_order": {k: v["cost_per_order_priced_per_parcel"] for k, v in per.items()},
            "cost_reduction_vs_nearest": round(
                1.0
                - r["cost_per_order_priced_per_parcel"] / near["cost_per_order_priced_per_parcel"],
                4,
            ),
        },
        "store_vans": {k: v["store_vans"] for k, v in per.items()},
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
        **({"bounds": bounds} if bounds is not None else {}),
        "setup": {
            "data": "m5_store_days (real daily units, 10 stores x items x 28 days)",
            "stores": {s: f"{STORES[s].city}, {STORES[s].state}" for s in data.store_ids},
            "dcs": {d: f"{p.city}, {p.state}" for d, p in DCS.items()},
            "items": len(data.skus),
            "replay_days": int(data.units.shape[2] - args.warmup_days),
            "replay": [str(data.dates[args.warmup_days]), str(data.dates[-1])],
            "warmup_days": args.warmup_days,
            "replenishment": f"{runs['router'].replenishment} per store, "
            f"lead {config.lead_time} d, review {config.review_period} d",
            "bundle": bundle,
            "online_share": channel.share,
            "basket_lines": channel.basket,
            "promised_days": channel.promise,
            "shelf_truth": truth.__dict__,
            "cost_model": cost.__dict__,
            "router_run_fill": router.run_fill,
            "run_outlook": not args.no_run_outlook,
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
