"""Business value in the digital twin: lost sales and inventory per policy on held-out
real weeks, and how long ``make demo`` takes on this machine.

What it does:

1. Online Retail II, United Kingdom as one store, its ``--top-skus`` SKUs by units (real daily
   demand). The last ``--test-days`` are the test replay, the ``--val-days`` before them the
   validation replay; both are held out from training.
2. Trains a bundle (demand model, ONNX) on the history before the validation weeks with the
   project's training pipeline, or reuses the one it trained before for the same cut.
3. ``twin.simulate.compare_policies``: min/max (reference: 3 safety days), and the gateway's
   decision policy with marginal-analysis buffers (``edge_runtime.decide.service_level``) driven by
   shelfcast (the gateway's own day close: the bundle's ONNX model + River, censored stock-out
   days) and by the best statsforecast baseline; ablations: shelfcast without River, without
   the censored-demand treatment, shelfcast's and statsforecast's forecasts with the normal
   safety stock; two references no store can run, told each SKU's true level over the next 28
   days (``clairvoyant_level``) or only its ordinary level, large orders clipped
   (``clairvoyant_base_level``).
   Each family's parameter is chosen on the validation weeks at no
   more average inventory than min/max there. Reports the test-week metrics,
   ``lost_sales_reduction_vs_minmax``, and the units no policy could have sold (a single day's
   demand above the SKU's shelf capacity). ``lost_sales_reduction_bootstrap``: how sure the
   headline is, a bootstrap over SKUs of the runs already made (``bootstrap_headline``).
4. Times ``make demo`` once (wall clock; says whether it trained or reused its bundle).
5. With ``--before OLD.json`` (this benchmark's JSON from an earlier commit, e.g. run from a
   ``git archive`` of it): the old and new figures side by side (``before_after``).

Usage: ``python benchmarks/twin.py --json out.json [--quick] [--no-demo] [--fresh-demo]
[--before OLD.json] [--refresh-days K]``; ``--refresh-days`` has the gateways swap in a bundle
the centre retrains every ``K`` days of each replay (``twin.model_refresh``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402
from twin.simulate import TABLE_COLUMNS, compare_policies, markdown  # noqa: E402
from twin.store import DemandPanel, StoreConfig  # noqa: E402

FIGURES = ("fill_rate", "lost_units", "stockout_sku_days", "avg_inventory_units")
# The code a bundle's models follow from: a cached bundle is reused only if it is unchanged.
TRAINING_CODE = ("training", "feature_store", "models")


def training_code_digest(root: Path = ROOT) -> str:
    """The first 12 hex digits of a SHA-256 over the training pipeline's source files
    (``TRAINING_CODE``, each file's path and bytes).

    Why: a benchmark that reuses its bundle must not keep one trained by older code. A bundle
    cached before a change of the demand model (its P90's training quantile, say) keeps the old
    model's forecasts, and every figure drawn from them, while the code says otherwise.
    """
    digest = hashlib.sha256()
    for folder in TRAINING_CODE:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def bundle_for(
    frame, cutoff, out: Path, trees: int, source: str | None = None, folds: int = 1
) -> tuple[Path, dict]:
    """Train on history up to ``cutoff`` or reuse the bundle trained for the same cut, trees
    and training code (``training_code_digest``).

    ``source`` names the history (default: this benchmark's Online Retail store); ``folds`` 0
    skips the training backtest (the bundle then carries no backtest metrics)."""
    import numpy as np

    from feature_store.spec import FEATURE_STORE_VERSION
    from training.train import TrainConfig, train

    source = source or f"online_retail UK top-{frame['sku'].nunique()} SKUs"
    source = f"{source} to {cutoff}, {trees} trees, training code {training_code_digest()}"
    meta_path = out / "metadata.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        # A bundle of another feature-store version would be refused by the gateway's loader.
        same_features = meta.get("feature_store_version") == FEATURE_STORE_VERSION
        if meta.get("data_source") == source and same_features:
            print(f"reusing bundle {out} ({source})", flush=True)
            return out, meta
    history = frame[frame["date"] <= np.datetime64(cutoff, "ns")]
    config = TrainConfig(folds=folds, n_estimators=trees, baselines=False)
    print(f"training bundle on {len(history):,} rows up to {cutoff} ({trees} trees)", flush=True)
    result = train(history, out, config, source, track=False)
    return result.bundle, result.metadata


def time_make_demo(fresh: bool) -> dict:
    """Wall-clock seconds of one ``make demo`` (its output goes to var/bench/make_demo.log)."""
    if fresh:
        shutil.rmtree(ROOT / "var" / "demo", ignore_errors=True)
    log = ROOT / "var" / "bench" / "make_demo.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        code = subprocess.call(["make", "demo"], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    text = log.read_text()
    return {
        "demo_seconds": round(seconds, 1),
        "exit_code": code,
        "trained": "[2 train] training on" in text,
        "reused_bundle": "reusing bundle" in text,
        "log": str(log.relative_to(ROOT)),
    }


def unavoidable_lost(panel: DemandPanel, config: StoreConfig, start: int) -> float:
    """Test-week units above the SKU's shelf capacity on a single day: lost whatever the policy
    (the twin never lets the inventory position exceed capacity)."""
    import numpy as np

    from twin.store import sku_parameters

    _, capacity, _ = sku_parameters(panel, start, config)
    return float(np.maximum(panel.units[:, start:] - capacity[:, None], 0.0).sum())


def headline(cmp, summary: dict) -> dict:
    """``lost_sales_reduction_vs_minmax`` at no more average inventory than min/max on the test
    weeks: shelfcast's test curve interpolated at min/max's inventory (the validation-tuned
    point is reported beside it with its inventory ratio, which can drift above 1 on test)."""
    from twin.simulate import interpolate_lost

    interp = summary["shelfcast_lost_reduction_at_equal_inventory_interpolated"]
    tuned = summary["shelfcast_lost_sales_reduction_vs_minmax"]
    ratio = summary["shelfcast_inventory_ratio_vs_minmax"]
    if interp is not None:
        value, how = interp, "interpolated on the test curve at min/max's average inventory"
    elif ratio <= 1.0:
        value, how = tuned, "validation-tuned point, test inventory within min/max's"
    else:
        value, how = None, "not measurable: min/max's inventory is outside shelfcast's curve"
    across = []
    curve = cmp.curve("shelfcast")
    for safety, inv, lost in cmp.curve("minmax"):
        at = interpolate_lost(curve, inv)
        across.append(
            {"minmax_safety_days": safety, "minmax_avg_inventory": inv, "minmax_lost": lost,
             "shelfcast_lost_at_same_inventory": at,
             "reduction": None if at is None or lost <= 0 else 1.0 - at / lost}
        )  # fmt: skip
    return {
        "lost_sales_reduction_vs_minmax": value,
        "lost_sales_reduction_method": how,
        "lost_sales_reduction_vs_minmax_validation_tuned": tuned,
        "inventory_ratio_vs_minmax_validation_tuned": ratio,
        "reduction_across_minmax_settings": across,
    }


# The bootstrap over SKUs of the headline (``bootstrap_headline``).
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 2026  # under 10,000: the results page prints it without a separator
GOAL = 0.20  # the lost-sales reduction the project aims for
PAIRED = ("shelfcast_no_river", "statsforecast")  # shelfcast minus each, on the same resamples


def _per_sku(cmp, family: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The family's test-week grid points: parameters (P,), and each SKU's lost units and mean
    on-hand, both (n, P). Summed over SKUs they are ``TwinRun.metrics``' ``lost_units`` and
    ``avg_inventory_units`` (on hand summed over SKUs, averaged over days)."""
    params = [p for p, runs in sorted(cmp.runs[family].items()) if "test" in runs]
    runs = [cmp.runs[family][p]["test"] for p in params]
    lost = np.stack([r.lost.sum(axis=1) for r in runs], axis=1)
    inv = np.stack([r.on_hand.mean(axis=1) for r in runs], axis=1)
    return np.asarray(params, dtype=np.float64), lost, inv


def _quantiles(values: np.ndarray) -> dict:
    """Point (the full sample), median and 5 / 95 % quantiles of the resamples (the first
    value is the full sample, the rest resamples; NaN: not measurable there)."""
    rest = values[1:]
    q05, q50, q95 = (np.nanquantile(rest, [0.05, 0.5, 0.95]) if np.isfinite(rest).any()
                     else (None, None, None))  # fmt: skip
    f = lambda v: None if v is None or not np.isfinite(v) else float(v)  # noqa: E731
    return {"point": f(values[0]), "median": f(q50), "q05": f(q05), "q95": f(q95)}


def bootstrap_headline(
    cmp,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = BOOTSTRAP_SEED,
    goal: float = GOAL,
    paired: tuple[str, ...] = PAIRED,
) -> dict:
    """How sure the headline is: a bootstrap over SKUs of ``lost_sales_reduction_vs_minmax``.

    ``draws`` resamples of the n SKUs with replacement (one (draws x n) index matrix from
    ``seed``, turned into how often each SKU is drawn). For each, from the test-week runs
    already made (no replay): min/max's lost units and average inventory, shelfcast's test
    curve (each grid point's lost units and inventory), and the reduction at min/max's
    inventory by the benchmark's own ``twin.simulate.interpolate_lost``, exactly as the
    headline. Sums over a resample are one matrix product of the counts with the per-SKU
    figures. ``paired``: shelfcast's reduction minus each named family's on the same
    resamples, the size a real difference must have to stand out of the SKUs' noise. A resample
    whose min/max inventory falls outside a curve is not measurable (NaN, counted; it does
    not reach the goal).

    Why the SKU is the unit: given the parameter, SKUs do not interact in the twin.
    ``twin.store.simulate`` updates every SKU's shelf, arrivals and orders elementwise
    (``round_order`` caps a SKU by its own capacity; no shared budget, truck or shelf), and
    ``sku_parameters`` sizes each SKU from its own history. The policies decide per SKU too:
    min/max and the buffers from the SKU's own sales, the gateway's day close from each
    series' own features (``feature_store.spec``), River's ``LevelCorrection`` and the
    censored level per SKU, the decision policy SKU by SKU. What every SKU shares is fixed
    before the replay: the bundle (trained on history before the validation weeks), the
    statsforecast model chosen on the weeks before the replay, and the parameter (grid and
    validation choice). So the interval is the noise of which SKUs the test weeks happen to
    hold, given those; it does not measure a retraining's or a re-tuning's noise.
    """
    from twin.simulate import interpolate_lost

    ref = cmp.test_run("minmax")
    n = ref.lost.shape[0]
    idx = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    counts = np.bincount((idx + n * np.arange(draws)[:, None]).ravel(), minlength=draws * n)
    # Row 0 is the full sample (the headline itself), the others the resamples.
    weights = np.vstack([np.ones(n), counts.reshape(draws, n).astype(np.float64)])
    ref_lost = weights @ ref.lost.sum(axis=1)
    ref_inv = weights @ ref.on_hand.mean(axis=1)

    def reductions(family: str) -> np.ndarray:
        params, lost, inv = _per_sku(cmp, family)
        lost_b, inv_b = weights @ lost, weights @ inv  # (draws + 1, P)
        out = np.full(len(weights), np.nan)
        for b in range(len(weights)):
            at = interpolate_lost(list(zip(params, inv_b[b], lost_b[b], strict=True)), ref_inv[b])
            if at is not None and ref_lost[b] > 0:
                out[b] = 1.0 - at / ref_lost[b]
        return out

    head = reductions("shelfcast")
    result = {
        **_quantiles(head),
        "goal": goal,
        "share_at_or_above_goal": float(np.mean(head[1:] >= goal)),  # NaN compares False
        "not_measurable": int(np.isnan(head[1:]).sum()),
        "draws": draws,
        "seed": seed,
        "paired": {},
    }
    for family in (f for f in paired if f in cmp.runs):
        diff = head - reductions(family)
        result["paired"][f"shelfcast_minus_{family}"] = {
            **_quantiles(diff),
            "share_above_zero": float(np.mean(diff[1:] > 0)),
        }
    return result


BEFORE_AFTER = ("lost_units", "avg_inventory_units", "fill_rate", "stockout_sku_days")


def before_after(before: dict, after: dict) -> dict:
    """Old and new figures of two runs of this benchmark, side by side: the headline, and each
    policy family's test-week figures at its chosen parameter."""
    head = ("lost_sales_reduction_vs_minmax", "lost_sales_reduction_vs_minmax_validation_tuned",
            "inventory_ratio_vs_minmax_validation_tuned")  # fmt: skip
    rows = []
    for family in after["policies"]:
        old = before.get("policies", {}).get(family, {})
        new = after["policies"][family]
        row = {"policy": family, "parameter_before": old.get("parameter"),
               "parameter_after": new.get("parameter")}  # fmt: skip
        for k in BEFORE_AFTER:
            row[f"{k}_before"], row[f"{k}_after"] = old.get(k), new.get(k)
        rows.append(row)
    return {
        "before": {k: before.get(k) for k in ("machine", "data", "twin_seconds")},
        "headline": {k: {"before": before.get(k), "after": after.get(k)} for k in head},
        "policies": rows,
    }


def show_before_after(result: dict, before: dict) -> None:
    """Add ``before_after`` to ``result`` and print it as two markdown tables."""
    result["before_after"] = compare = before_after(before, result)
    print(markdown([{"figure": k, **v} for k, v in compare["headline"].items()],
                   ("figure", "before", "after")))  # fmt: skip
    cols = [f"{k}_{w}" for k in BEFORE_AFTER for w in ("before", "after")]
    print(markdown(compare["policies"], ("policy", "parameter_before", "parameter_after", *cols)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="30 SKUs, 4+4 weeks, small grids")
    parser.add_argument("--top-skus", type=int, default=None, help="SKUs (default 200)")
    parser.add_argument("--test-days", type=int, default=None, help="default 56")
    parser.add_argument("--val-days", type=int, default=None, help="default 56")
    parser.add_argument("--trees", type=int, default=200, help="trees per LightGBM model")
    parser.add_argument("--no-demo", action="store_true", help="do not time `make demo`")
    parser.add_argument(
        "--ablation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run shelfcast without River and without the censored-demand treatment, and "
        "shelfcast and statsforecast with the normal safety stock (default on)",
    )
    parser.add_argument(
        "--fresh-demo", action="store_true", help="delete var/demo first (time a first run)"
    )
    parser.add_argument(
        "--refresh-days",
        type=int,
        default=None,
        help="the shelfcast gateways swap in a bundle the centre retrains every this many days "
        "of a replay (twin.model_refresh; default: one bundle for the whole replay)",
    )
    parser.add_argument(
        "--refresh-reset-river",
        action="store_true",
        help="with --refresh-days: River's correction starts afresh with each new bundle "
        "(a gateway keeps it)",
    )
    parser.add_argument(
        "--before", default=None, help="this benchmark's JSON from an earlier commit: compare"
    )
    parser.add_argument(
        "--compare-only",
        action="store_true",
        help="no replay: add the --before comparison to the run already in --json",
    )
    args = parser.parse_args()
    if args.compare_only:
        if not args.before:
            parser.error("--compare-only needs --before OLD.json")
        result = json.loads(Path(args.json).read_text())
        show_before_after(result, json.loads(Path(args.before).read_text()))
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        return 0
    from training.datasets import online_retail

    top = args.top_skus or (30 if args.quick else 200)
    test_days = args.test_days or (28 if args.quick else 56)
    val_days = args.val_days or (28 if args.quick else 56)
    trees = 60 if args.quick else args.trees
    t0 = time.perf_counter()
    frame = online_retail(top_skus=top)
    panel = DemandPanel.from_frame(frame)
    test0 = panel.n_days - test_days
    val0 = test0 - val_days
    cutoff = panel.dates[val0 - 1]
    bundle, meta = bundle_for(frame, cutoff, ROOT / "var" / "bench" / f"twin_bundle_{top}", trees)
    config = StoreConfig()
    refresh = None
    if args.refresh_days:
        from twin.model_refresh import ModelRefresh

        refresh = ModelRefresh(frame, args.refresh_days, trees, ROOT / "var/bench/twin_refresh",
                               keep_correction=not args.refresh_reset_river)  # fmt: skip
    grids = (
        {"z_grid": (1.0, 2.33), "minmax_grid": (1.5, 3.0, 4.5), "every_days_grid": (20.0, 75.0)}
        if args.quick
        else {}
    )
    ablations = (
        ["shelfcast_no_river", "shelfcast_uncensored", "shelfcast_normal", "statsforecast_normal"]
        if args.ablation
        else []
    )
    cmp = compare_policies(
        panel,
        ["shelfcast", "statsforecast", *ablations, "clairvoyant_level", "clairvoyant_base_level"],
        config,
        str(bundle),
        test_days,
        val_days,
        progress=lambda i, n, what: print(f"  [{i}/{n}] {what}", flush=True),
        refresh=refresh,
        **grids,
    )
    twin_seconds = time.perf_counter() - t0
    rows = cmp.table()
    summary = cmp.summary()
    t_boot = time.perf_counter()
    boot = bootstrap_headline(cmp)
    boot_seconds = time.perf_counter() - t_boot
    result = {
        "benchmark": "twin",
        "machine": machine(),
        "data": {
            "source": "online_retail (UCI Online Retail II), United Kingdom as one store",
            "skus": panel.n_skus,
            "history": [str(panel.dates[0]), str(cutoff)],
            "windows": cmp.windows,
            "bundle": {
                "path": str(bundle),
                "model_version": meta.get("model_version"),
                "training_data": meta.get("training_data"),
            },
        },
        "store": config.__dict__,
        "comparison_method": (
            "each policy family's parameter chosen on the validation weeks: fewest lost units "
            "with average inventory <= min/max (3 safety days) there; figures are test weeks. "
            "Also: test-week lost units interpolated on the family's curve at min/max's inventory."
        ),
        "policies": {r["policy"]: {**{k: r.get(k) for k in FIGURES}, **r} for r in rows},
        "curves": {f: cmp.curve(f) for f in cmp.runs},
        **headline(cmp, summary),
        "lost_sales_reduction_bootstrap": boot,
        "summary": summary,
        "notes": cmp.notes,
        "lost_units_no_policy_can_avoid": unavoidable_lost(panel, config, test0),
        "twin_seconds": round(twin_seconds, 1),
        "refresh_days": args.refresh_days,
        "refresh_reset_river": args.refresh_reset_river,
        "refresh_training_seconds": refresh.seconds if refresh else [],
    }
    print(f"\nstore {panel.store_id}, {panel.n_skus} SKUs, test {cmp.windows['test']}\n")
    print(markdown(rows, TABLE_COLUMNS))
    head = {k: v for k, v in result.items() if k.startswith(("lost_sales", "inventory_ratio"))}
    head.pop("lost_sales_reduction_bootstrap")
    print(
        markdown(
            [{"figure": k, "value": v} for k, v in {**summary, **head}.items()], ("figure", "value")
        )
    )
    print(markdown(result["reduction_across_minmax_settings"],
                   ("minmax_safety_days", "minmax_avg_inventory", "minmax_lost",
                    "shelfcast_lost_at_same_inventory", "reduction")))  # fmt: skip
    print(f"bootstrap over SKUs ({boot['draws']} draws, seed {boot['seed']}, "
          f"{boot_seconds:.2f} s):")  # fmt: skip
    print(markdown([{"figure": "shelfcast's reduction", **boot},
                    *({"figure": k, **v} for k, v in boot["paired"].items())],
                   ("figure", "point", "median", "q05", "q95", "share_at_or_above_goal",
                    "share_above_zero")))  # fmt: skip
    if args.before:
        show_before_after(result, json.loads(Path(args.before).read_text()))
    if not args.no_demo:
        print("timing `make demo` ...", flush=True)
        result["make_demo"] = time_make_demo(args.fresh_demo)
        result["demo_seconds"] = result["make_demo"]["demo_seconds"]
        print(
            markdown(
                [result["make_demo"]], ("demo_seconds", "exit_code", "trained", "reused_bundle")
            )
        )
    m = result["machine"]
    print(f"machine: nproc {m['nproc']}, memory {m['memory_gib']} GiB")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
