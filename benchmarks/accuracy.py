"""Accuracy of the demand model on real daily SKU data against statsforecast baselines, its
ONNX parity and speed.

    python benchmarks/accuracy.py --json out.json          # full: top 300 Online Retail SKUs + M5
    python benchmarks/accuracy.py --json out.json --quick  # top 30 SKUs, 100 trees (~3 minutes)
    python benchmarks/accuracy.py --json out.json --favorita  # + Favorita's 54 store series

Rolling origin, 3 folds x 28 days, on (a) the Online Retail II daily panel of the UK store's
top-N SKUs by units (intermittent, wholesale spikes) and (b) the 10 full-history M5 series.
The global model trains on a wider assortment (top ``--train-skus`` SKUs, default 1000) and is
scored on the same top-N series as the baselines.
Metrics are unweighted means over series-folds of both data sets: RMSSE, MASE (M5 scaling by
in-sample naive errors), scaled pinball loss, P90 coverage. ``rmsse_best_baseline`` is the best
single statsforecast method overall (SeasonalNaive(7), AutoETS, CrostonOptimized, TSB, ADIDA).
Two references are not forecasts: ``clairvoyant_level`` is told each series' true mean over the
28 test days (flat), ``clairvoyant_level_weekday`` the same mean shaped by the series' weekday
profile of its last 364 days; their ratios to the best baseline show where the 0.90 goal sits.
Speed: median of several runs scoring 10,000 held-out rows on one thread, ONNX Runtime vs
native LightGBM, measured here on the same rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.machine import machine
from feature_store.batch import close_features, forecast_rows, panel_from_frame
from feature_store.spec import names
from training.backtest import BacktestResult, backtest, fold_cutoffs
from training.datasets import favorita, m5_sample, online_retail

FOLDS, HORIZON = 3, 28


def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def speed_and_parity(panel, model, runs: int) -> dict:
    """ONNX vs native on held-out rows of the last fold (close days after its training cutoff)."""
    import onnxruntime as ort

    from models.onnx_export import max_abs_diff, run_onnx

    close = close_features(panel)
    cut = fold_cutoffs(panel.n_days, FOLDS, HORIZON)[-1]
    held = np.concatenate([forecast_rows(panel, close, d)[0] for d in range(cut + 1, panel.n_days)])
    onnx_bytes = model.to_onnx(len(names()))
    native = model.predict(held)
    diff = max_abs_diff(native, run_onnx(onnx_bytes, held))
    scale = max(1.0, max(float(np.abs(v).max()) for v in native.values()))

    rows = np.ascontiguousarray(np.resize(held, (10_000, held.shape[1])), dtype=np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    model.n_jobs = 1  # native prediction on one thread too
    return {
        "onnx_max_abs_diff": diff,
        "onnx_max_abs_diff_over_scale": diff / scale,
        "parity_rows": len(held),
        "onnx_ms_per_10k_rows": _median_ms(lambda: sess.run(None, {"features": rows}), runs),
        "native_ms_per_10k_rows": _median_ms(lambda: model.predict(rows), runs),
        "speed_runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True, help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="top 30 SKUs, 100 trees")
    ap.add_argument(
        "--skus", type=int, default=None, help="Online Retail SKUs (default 300; quick 30)"
    )
    ap.add_argument(
        "--trees", type=int, default=None, help="trees per model (default 200; quick 100)"
    )
    ap.add_argument(
        "--train-skus",
        type=int,
        default=None,
        help="Online Retail SKUs the global model trains on (default 1000; quick 100); "
        "only the top --skus are scored",
    )
    ap.add_argument(
        "--favorita",
        action="store_true",
        help="also backtest Favorita's 54 daily store series (receipts, holidays); they then "
        "count in the combined figures too",
    )
    args = ap.parse_args(argv)
    skus = args.skus or (30 if args.quick else 300)
    trees = args.trees or (100 if args.quick else 200)
    train_skus = max(args.train_skus or (100 if args.quick else 1000), skus)
    info = machine()
    started = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {msg}", file=sys.stderr, flush=True)

    retail = online_retail(top_skus=train_skus)
    scored = set(retail.groupby("sku")["units"].sum().nlargest(skus).index)
    big = f"online_retail_uk_top{skus}"
    sets = {big: panel_from_frame(retail), "m5_sample": panel_from_frame(m5_sample())}
    evaluate = {big: np.array([k[1] in scored for k in sets[big].keys]), "m5_sample": None}
    if args.favorita:
        sets["favorita_stores"], evaluate["favorita_stores"] = panel_from_frame(favorita()), None
    combined = BacktestResult()
    per_set = {}
    last_model = {}
    for name, panel in sets.items():
        say(
            f"{name}: {len(panel.keys)} series x {panel.n_days} days, {FOLDS} folds x {HORIZON} days"
        )
        res = backtest(
            panel,
            folds=FOLDS,
            horizon=HORIZON,
            model_params={"n_estimators": trees},
            progress=lambda m, n=name: say(f"  {n} {m}"),
            evaluate=evaluate[name],
        )
        per_set[name] = res.summary()
        for row in res.rows:
            combined.rows.append({**row, "series": f"{name}/{row['series']}"})
        combined.train_seconds += res.train_seconds
        last_model[name] = (panel, res.models[-1])
    summary = combined.summary()
    say("ONNX parity and speed")
    speed = speed_and_parity(*last_model[big], runs=7)
    parity = [
        speed_and_parity(*last_model[k], runs=1)["onnx_max_abs_diff"] for k in sets if k != big
    ]

    figures = {
        "rmsse_model": summary["rmsse_model"],
        "rmsse_best_baseline": summary["rmsse_best_baseline"],
        "best_baseline": summary["best_baseline"],
        "rmsse_ratio": summary["rmsse_ratio"],
        "mase_model": summary["mase_model"],
        "mase_best_baseline": summary["mase_best_baseline"],
        "p90_coverage": summary["p90_coverage"],
        "spl50_model": summary["spl50_model"],
        "spl50_best_baseline": summary["spl50_best_baseline"],
        "spl90_model": summary["spl90_model"],
        "rmsse_best_per_series_oracle": summary["rmsse_best_per_series_oracle"],
        # References told each series' true test mean (flat, and with its weekday profile).
        "clairvoyant_level_ratio": summary["clairvoyant_level_ratio"],
        "clairvoyant_level_weekday_ratio": summary["clairvoyant_level_weekday_ratio"],
        "onnx_max_abs_diff": max(speed["onnx_max_abs_diff"], *parity),
        "train_seconds": summary["train_seconds"],
        "onnx_ms_per_10k_rows": speed["onnx_ms_per_10k_rows"],
        "native_ms_per_10k_rows": speed["native_ms_per_10k_rows"],
    }
    result = {
        "figures": figures,
        "per_dataset": per_set,
        "baselines_rmsse": {
            k[6:]: v
            for k, v in summary.items()
            if k.startswith("rmsse_")
            and k[6:] in ("SeasonalNaive", "AutoETS", "CrostonOptimized", "TSB", "ADIDA")
        },
        "speed": speed,
        "setup": {
            "mode": "quick" if args.quick else "full",
            "datasets": {
                k: int(v.sum()) if v is not None else len(sets[k].keys) for k, v in evaluate.items()
            },
            "trained_on_series": {k: len(p.keys) for k, p in sets.items()},
            "note": "the global model trains on the top --train-skus Online Retail SKUs (the "
            "store's wider assortment) and is scored, like the baselines, on the top --skus",
            "folds": FOLDS,
            "horizon": HORIZON,
            "trees_per_model": trees,
            "series_folds": summary["n_series_folds"],
            "train_seconds_means": "mean wall time to fit the 3 LightGBM models of one fold (1 thread)",
            "aggregation": "unweighted mean over series-folds of both data sets",
        },
        "machine": info,
        "wall_seconds": time.perf_counter() - started,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")

    print(
        f"## Demand accuracy ({result['setup']['mode']}: {result['setup']['datasets']}, "
        f"{FOLDS} folds x {HORIZON} days, {summary['n_series_folds']} series-folds)\n"
    )
    print("| figure | value |\n| --- | --- |")
    for k, v in figures.items():
        print(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
    print(f"| nproc | {info['nproc']} |\n| memory_gib | {info['memory_gib']} |")
    print(
        "\n| data set | rmsse_model | rmsse_best_baseline | best | rmsse_ratio | "
        "clairvoyant_level_ratio | clairvoyant_level_weekday_ratio | mase_model | p90_coverage |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for k, s in per_set.items():
        print(
            f"| {k} | {s['rmsse_model']:.4f} | {s['rmsse_best_baseline']:.4f} | {s['best_baseline']} | "
            f"{s['rmsse_ratio']:.4f} | {s['clairvoyant_level_ratio']:.4f} | "
            f"{s['clairvoyant_level_weekday_ratio']:.4f} | {s['mase_model']:.4f} | {s['p90_coverage']:.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
