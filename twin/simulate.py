"""``shelfcast simulate``: compare replenishment policies in the digital twin on held-out real weeks.

Windows: the ``test_days`` from ``--test-start`` (default: the last ``test_days`` of the data)
are the test replay, and nothing after them is read; the SKUs are ranked on the days before
them; the ``val_days`` before them are the validation replay. Each policy family runs over a
grid of its service parameter on both (min/max: safety days; the normal order-up-to rule: z;
the marginal rule: ``every_days``, the buffer covers the single-day demand exceeded once every
that many days). The min/max reference is the classic rule at its default
safety stock; every other family's parameter is **chosen on the validation weeks** as the one
with the fewest lost units whose average inventory is no more than the min/max reference's
there, then reported on the test weeks. As a cross-check the test-week curve (lost units
against average inventory) is also interpolated at min/max's test inventory.

>>> print(" ".join(sorted(FAMILIES)))  # doctest: +NORMALIZE_WHITESPACE
clairvoyant_base_level clairvoyant_level minmax shelfcast shelfcast_no_river shelfcast_normal
shelfcast_uncensored statsforecast statsforecast_normal
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.model_refresh import ModelRefresh
from twin.store import (
    DemandPanel,
    StoreConfig,
    TwinDataError,
    TwinRun,
    prediction_quality,
    simulate,
)

# Days above this multiple of a SKU's usual (91-day mean) demand are the large orders
# (``edge_runtime.decide.service_level``: 88 % of min/max's lost units fall on such days).
BASE_LEVEL_SPIKE_CLIP = 5.0
FAMILIES = {
    "minmax": "classic min/max from trailing 91-day average sales (parameter: safety days)",
    "statsforecast": "the same rule as shelfcast (order-up-to with marginal-analysis buffers) driven "
    "by the best statsforecast baseline (parameter: every_days)",
    "shelfcast": "the gateway's own day close (ONNX model + River, censored stock-out days) and "
    "decision policy with marginal-analysis buffers (parameter: every_days)",
    "shelfcast_no_river": "the same without the River correction, to see what River adds",
    "shelfcast_uncensored": "the same learning an empty-shelf day as what it sold, to see what "
    "the censored-demand treatment adds",
    "shelfcast_normal": "ONNX model + River with the normal safety stock z * sigma (parameter: z), "
    "to see what the marginal buffers add",
    "statsforecast_normal": "the best statsforecast baseline with the normal safety stock "
    "(parameter: z)",
    "clairvoyant_level": "a reference, not a policy: the marginal rule told each SKU's true mean "
    "demand over the next 28 days (what a perfect level forecast would be worth)",
    "clairvoyant_base_level": "a reference, not a policy: the same, but each future day counts at "
    f"most {BASE_LEVEL_SPIKE_CLIP:g}x the SKU's 91-day mean, so it knows the ordinary demand "
    "ahead and not the large orders (what a perfect forecast of the ordinary level would be worth)",
}
MARGINAL_FAMILIES = (
    "shelfcast",
    "shelfcast_no_river",
    "shelfcast_uncensored",
    "statsforecast",
    "clairvoyant_level",
    "clairvoyant_base_level",
)
MINMAX_GRID = (0.0, 1.5, 3.0, 4.5, 6.0)
MINMAX_REFERENCE = 3.0
Z_GRID = (0.5, 1.0, 1.645, 2.33, 3.0, 4.0)
EVERY_DAYS_GRID = (10.0, 20.0, 35.0, 50.0, 75.0, 100.0, 150.0)
ALERT_THRESHOLD = 0.5  # the edge StockoutMonitor's default threshold


@dataclass
class Comparison:
    """Every run of a comparison and the figures derived from them."""

    config: StoreConfig
    windows: dict[str, tuple[str, str]]
    runs: dict[str, dict[float, dict[str, TwinRun]]] = field(default_factory=dict)
    chosen: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def test_run(self, family: str) -> TwinRun:
        return self.runs[family][self.chosen[family]]["test"]

    def table(self) -> list[dict]:
        """One row per policy family at its chosen parameter, test weeks."""
        rows = []
        for family in self.runs:
            run = self.test_run(family)
            row = {"policy": family, "name": run.policy, "parameter": self.chosen[family]}
            row.update(run.metrics())
            row.update(
                {f"stockout_{k}": v for k, v in prediction_quality(run, ALERT_THRESHOLD).items()}
            )
            rows.append(row)
        return rows

    def curve(self, family: str, window: str = "test") -> list[tuple[float, float, float]]:
        """(parameter, avg inventory, lost units) over the family's grid."""
        out = []
        for param, runs in sorted(self.runs[family].items()):
            if window not in runs:
                continue  # a refinement step run on validation only
            m = runs[window].metrics()
            out.append((param, m["avg_inventory_units"], m["lost_units"]))
        return out

    def summary(self) -> dict:
        """Each family against min/max on the test weeks (None where min/max lost nothing or
        held no stock, so a ratio says nothing)."""
        ref = self.test_run("minmax").metrics()
        out: dict = {"minmax_reference_safety_days": self.chosen["minmax"]}
        for family in self.runs:
            if family == "minmax":
                continue
            m = self.test_run(family).metrics()
            interp = interpolate_lost(self.curve(family), ref["avg_inventory_units"])
            out[f"{family}_lost_sales_reduction_vs_minmax"] = _reduction(
                m["lost_units"], ref["lost_units"]
            )
            out[f"{family}_inventory_ratio_vs_minmax"] = _ratio(
                m["avg_inventory_units"], ref["avg_inventory_units"]
            )
            out[f"{family}_lost_reduction_at_equal_inventory_interpolated"] = (
                None if interp is None else _reduction(interp, ref["lost_units"])
            )
        return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _reduction(lost: float, ref_lost: float) -> float | None:
    return 1.0 - lost / ref_lost if ref_lost > 0 else None


def interpolate_lost(curve: list[tuple[float, float, float]], inventory: float) -> float | None:
    """Lost units a policy would have at ``inventory``, linear between its grid points
    (None when ``inventory`` is outside the range the grid covered)."""
    pts = sorted((inv, lost) for _, inv, lost in curve)
    invs = [p[0] for p in pts]
    if not pts or inventory < invs[0] or inventory > invs[-1]:
        return None
    return float(np.interp(inventory, invs, [p[1] for p in pts]))


def _policy(
    family: str,
    param: float,
    bundle: str | None,
    baselines: tuple[str, ...] | None,
    refresh: ModelRefresh | None = None,
):
    from twin.policies import (
        ClairvoyantLevelForecaster,
        MarginalOrderUpToPolicy,
        MinMaxPolicy,
        OrderUpToPolicy,
        StatsForecastForecaster,
    )

    if family == "minmax":
        return MinMaxPolicy(safety_days=param)
    if family.startswith("clairvoyant"):
        clip = BASE_LEVEL_SPIKE_CLIP if family == "clairvoyant_base_level" else None
        return MarginalOrderUpToPolicy(
            ClairvoyantLevelForecaster(spike_clip=clip), every_days=param
        )
    if family.startswith("statsforecast"):
        kw = {"candidates": baselines} if baselines else {}
        if family == "statsforecast":
            return MarginalOrderUpToPolicy(StatsForecastForecaster(**kw), every_days=param)
        return OrderUpToPolicy(StatsForecastForecaster(**kw), z=param)
    if family in FAMILIES and family.startswith("shelfcast"):
        from edge_runtime.forecast.online import LevelCorrection
        from twin.gateway_engine import GatewayPolicy

        # Without River: the gateway's correction held at a factor of 1.
        frozen = (lambda: LevelCorrection(bounds=(1.0, 1.0))) if "no_river" in family else None
        common = {"correction": frozen, "censored": family != "shelfcast_uncensored",
                  "refresh": refresh}  # fmt: skip
        name = f"gateway[{family}]"
        if family in MARGINAL_FAMILIES:
            return GatewayPolicy(bundle, buffer_every_days=param, name=name, **common)
        return GatewayPolicy(bundle, z=param, name=name, **common)
    raise ValueError(f"unknown policy {family!r}; choose from {', '.join(FAMILIES)}")


def compare_policies(
    panel: DemandPanel,
    families: list[str],
    config: StoreConfig | None = None,
    bundle: str | None = None,
    test_days: int = 56,
    val_days: int = 56,
    z_grid: tuple[float, ...] = Z_GRID,
    minmax_grid: tuple[float, ...] = MINMAX_GRID,
    baselines: tuple[str, ...] | None = None,
    progress=None,
    refine: int = 4,
    every_days_grid: tuple[float, ...] = EVERY_DAYS_GRID,
    refresh: ModelRefresh | None = None,
) -> Comparison:
    """Run every family over its grid on the validation and test windows (same demand, same
    store), choose parameters on validation, and return the :class:`Comparison`.

    ``z_grid`` serves the normal-safety-stock families, ``every_days_grid`` the marginal ones
    (:data:`MARGINAL_FAMILIES`). ``refine`` > 0 bisects each forecast family's parameter between
    the grid points around min/max's validation inventory, that many times (validation runs
    only), so the chosen policy uses as much of the inventory budget as it may; the test run is
    then made at the refined parameter. ``refresh`` (``twin.model_refresh``): the shelfcast
    families' gateways swap in the centre's retrained bundle every ``refresh.every_days``."""
    config = config or StoreConfig()
    if "minmax" not in families:
        families = ["minmax", *families]  # the reference every figure is relative to
    if any(f.startswith("shelfcast") for f in families) and not bundle:
        raise ValueError("the shelfcast policy needs a model bundle (--bundle DIR)")
    test0 = panel.n_days - test_days
    val0 = test0 - val_days
    if val0 < 28:
        raise ValueError(
            f"{panel.n_days} days of data is too short for {val_days} validation + {test_days} "
            "test days after at least 28 days of history"
        )
    windows = {"validation": (val0, test0), "test": (test0, panel.n_days)}
    cmp = Comparison(
        config, {k: (str(panel.dates[a]), str(panel.dates[b - 1])) for k, (a, b) in windows.items()}
    )
    horizon = max(config.lead_time, 1)
    grids = {"minmax": minmax_grid, **dict.fromkeys(MARGINAL_FAMILIES, every_days_grid)}
    jobs = [(f, p) for f in families for p in grids.get(f, z_grid)]
    for i, (family, param) in enumerate(jobs):
        runs = {}
        for window, (a, b) in windows.items():
            policy = _policy(family, param, bundle, baselines, refresh)
            runs[window] = simulate(panel, policy, config, a, b, horizon)
        cmp.runs.setdefault(family, {})[param] = runs
        if progress:
            progress(i + 1, len(jobs), f"{family} {param}")
    _choose(cmp, minmax_grid)
    for family in families:
        if family != "minmax" and refine > 0:
            make = lambda f, p: _policy(f, p, bundle, baselines, refresh)  # noqa: E731
            _refine(cmp, family, refine, panel, config, windows, horizon, make)
            if progress:
                progress(
                    len(jobs), len(jobs), f"{family}: parameter refined to {cmp.chosen[family]:.3f}"
                )
    return cmp


def _choose(cmp: Comparison, minmax_grid: tuple[float, ...]) -> None:
    ref = (
        MINMAX_REFERENCE if MINMAX_REFERENCE in minmax_grid else minmax_grid[len(minmax_grid) // 2]
    )
    cmp.chosen["minmax"] = ref
    budget = cmp.runs["minmax"][ref]["validation"].metrics()["avg_inventory_units"]
    for family, grid in cmp.runs.items():
        if family == "minmax":
            continue
        val = {p: r["validation"].metrics() for p, r in grid.items()}
        within = [p for p, m in val.items() if m["avg_inventory_units"] <= budget]
        if within:
            cmp.chosen[family] = min(within, key=lambda p: val[p]["lost_units"])
        else:
            cmp.chosen[family] = min(val, key=lambda p: val[p]["avg_inventory_units"])
            cmp.notes.append(
                f"{family}: no grid point stayed within min/max's validation inventory; "
                "took the leanest"
            )


def _refine(cmp, family, steps, panel, config, windows, horizon, make) -> None:
    """Bisect the parameter on the validation weeks: the largest whose average inventory stays
    within min/max's validation inventory (inventory grows with z and with every_days), then run
    the test weeks there."""
    budget = cmp.runs["minmax"][cmp.chosen["minmax"]]["validation"].metrics()["avg_inventory_units"]
    grid = cmp.runs[family]
    inv = {p: r["validation"].metrics()["avg_inventory_units"] for p, r in grid.items()}
    within = sorted(p for p in inv if inv[p] <= budget)
    above = sorted(p for p in inv if inv[p] > budget and (not within or p > within[-1]))
    if not within:
        return  # even the leanest grid point is over budget: keep the grid choice
    # Past the grid's top when even its largest parameter stays within budget.
    lo, hi = within[-1], (above[0] if above else max(2.0 * within[-1], within[-1] + 2.0))
    a, b = windows["validation"]
    for _ in range(steps):
        mid = round((lo + hi) / 2.0, 4)
        run = simulate(panel, make(family, mid), config, a, b, horizon)
        if run.metrics()["avg_inventory_units"] <= budget:
            lo = mid
            grid.setdefault(mid, {})["validation"] = run
        else:
            hi = mid
    if lo not in grid or "test" not in grid[lo]:
        a, b = windows["test"]
        grid.setdefault(lo, {})["test"] = simulate(panel, make(family, lo), config, a, b, horizon)
    if grid[lo]["validation"].metrics()["lost_units"] <= min(
        grid[p]["validation"].metrics()["lost_units"] for p in within
    ):
        cmp.chosen[family] = lo


def load_panel(
    data: str,
    store: str | None,
    top_skus: int | None,
    test_days: int = 56,
    test_start: str | None = None,
) -> DemandPanel:
    """A canonical file path, or the name of a bundled data set (e.g. ``online_retail``), as the
    panel the comparison replays: it ends on the last test day, and its ``top_skus`` are ranked
    on the days before the test window only (ranking on the test weeks would hand the twin
    tomorrow's best sellers). The test window is ``test_days`` from ``test_start`` (default:
    the last ``test_days`` of the data)."""
    from twin.store import TwinDataError, load_canonical

    path = Path(data)
    if path.exists():
        frame = load_canonical(path)
    else:
        from training.datasets import DATASETS, load_dataset

        if data not in DATASETS:
            raise FileNotFoundError(
                f"--data {data!r}: no such file, and not a bundled data set ({', '.join(sorted(DATASETS))})"
            )
        frame = load_dataset(data)
    last = np.datetime64(frame["date"].max(), "D")
    start = last - (test_days - 1) if test_start is None else np.datetime64(test_start, "D")
    end = start + (test_days - 1)
    if end > last:
        raise TwinDataError(
            f"--test-start {start}: {test_days} test days would end {end}, after the data's "
            f"last day {last}"
        )
    panel = DemandPanel.from_frame(frame, store_id=store, top_skus=top_skus, rank_before=start)
    return panel.until(end)


def markdown(rows: list[dict], cols: tuple[str, ...], headers: dict[str, str] | None = None) -> str:
    """A markdown table of ``rows`` restricted to ``cols``, headed by ``headers`` (key ->
    header) where given, else by the keys."""

    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}"
        return str(v)

    names = [(headers or {}).get(c, c) for c in cols]
    head = "| " + " | ".join(names) + " |\n|" + "---|" * len(cols) + "\n"
    return head + "".join("| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |\n" for r in rows)


TABLE_COLUMNS = (
    "policy",
    "parameter",
    "fill_rate",
    "lost_units",
    "lost_value",
    "stockout_sku_days",
    "avg_inventory_units",
    "days_of_cover",
    "orders_placed",
    "stockout_auc",
    "stockout_brier",
    "stockout_precision",
    "stockout_recall",
)
# One header per table column, for the console and the demo report alike.
COLUMN_LABELS = {
    "policy": "Policy",
    "parameter": "Parameter",
    "fill_rate": "Fill rate",
    "lost_units": "Lost units",
    "lost_value": "Lost sales value",
    "stockout_sku_days": "Stock-out SKU-days",
    "avg_inventory_units": "Avg inventory (units)",
    "days_of_cover": "Days of cover",
    "orders_placed": "Orders placed",
    "stockout_auc": "Stock-out ROC AUC",
    "stockout_brier": "Stock-out Brier score",
    "stockout_precision": "Stock-out precision",
    "stockout_recall": "Stock-out recall",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:  # `shelfcast simulate`
    parser.add_argument(
        "--data",
        default="online_retail",
        help="canonical sales file (Parquet/CSV: store_id, sku, date, units[, price]) or a "
        "bundled data set name (default online_retail)",
    )
    parser.add_argument("--store", default=None, help="store_id to replay (default: the largest)")
    parser.add_argument(
        "--top-skus",
        type=int,
        default=200,
        help="SKUs with most units before the test window (0 = all)",
    )
    parser.add_argument(
        "--test-start",
        type=_iso_day,
        default=None,
        help="first test day, yyyy-mm-dd (default: the last --test-days of the data); the "
        "replay ends --test-days later and nothing after that is read",
    )
    parser.add_argument(
        "--policy",
        action="append",
        choices=sorted(FAMILIES),
        help="policy to compare (repeat; default minmax, statsforecast, shelfcast; min/max "
        "always runs as the reference)",
    )
    parser.add_argument("--bundle", default="var/bundle", help="model bundle for shelfcast")
    parser.add_argument("--lead-time", type=int, default=2, help="supplier lead time, days")
    parser.add_argument("--review-period", type=int, default=7, help="days between orders")
    parser.add_argument("--pack-size", default="auto", help="units per case, or 'auto' per SKU")
    parser.add_argument("--capacity-days", type=float, default=42.0, help="shelf capacity, days")
    parser.add_argument("--test-days", type=int, default=56, help="held-out days replayed")
    parser.add_argument("--val-days", type=int, default=56, help="days before them, for tuning")
    parser.add_argument("--json", default=None, help="write the comparison as JSON here")


def _iso_day(text: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as yyyy-mm-dd, got {text!r}") from None


def config_from(args: argparse.Namespace) -> StoreConfig:
    pack = args.pack_size if args.pack_size == "auto" else int(args.pack_size)
    return StoreConfig(
        lead_time=args.lead_time,
        review_period=args.review_period,
        pack_size=pack,
        capacity_days=args.capacity_days,
    )


def to_json(cmp: Comparison, panel: DemandPanel) -> dict:
    return {
        "store_id": panel.store_id,
        "skus": panel.n_skus,
        "windows": cmp.windows,
        "config": cmp.config.__dict__,
        "chosen": cmp.chosen,
        "policies": cmp.table(),
        "curves": {f: cmp.curve(f) for f in cmp.runs},
        "summary": cmp.summary(),
        "notes": cmp.notes,
    }


def run(args: argparse.Namespace) -> int:
    families = args.policy or ["minmax", "shelfcast", "statsforecast"]
    if (
        any(f.startswith("shelfcast") for f in families)
        and not Path(args.bundle, "manifest.json").exists()
    ):
        print(
            f"shelfcast simulate: no model bundle at {args.bundle}; train one with "
            f"`shelfcast train --out {args.bundle}` or pass --bundle DIR (or --policy minmax "
            "--policy statsforecast)",
            file=sys.stderr,
        )
        return 2
    t0 = time.perf_counter()
    try:
        panel = load_panel(
            args.data, args.store, args.top_skus or None, args.test_days, args.test_start
        )
    except (TwinDataError, FileNotFoundError) as exc:
        print(f"shelfcast simulate: {exc}", file=sys.stderr)
        return 2
    print(f"store {panel.store_id}: {panel.n_skus} SKUs, {panel.dates[0]} .. {panel.dates[-1]}")

    def progress(i: int, n: int, what: str) -> None:
        print(f"  [{i}/{n}] {what}  ({time.perf_counter() - t0:.0f} s)", flush=True)

    cmp = compare_policies(
        panel,
        families,
        config_from(args),
        args.bundle,
        args.test_days,
        args.val_days,
        progress=progress,
    )
    print(f"\ntest weeks {cmp.windows['test'][0]} .. {cmp.windows['test'][1]}:")
    print(markdown(cmp.table(), TABLE_COLUMNS, COLUMN_LABELS))
    for k, v in cmp.summary().items():
        print(f"{k}: {v if v is None else round(v, 4)}")
    for note in cmp.notes:
        print("note:", note)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(to_json(cmp, panel), indent=2, default=str))
    return 0
