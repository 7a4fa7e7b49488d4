"""Stock-out predictions scored against real stock-outs (FreshRetailNet-50K's hourly flags).

Two parts, on reproducible random samples (stated in the output): whole stores for the warning
(a gateway sees all of its store's SKUs), series for forecast accuracy.

1. The 4-hour warning: rows are series in stock at a complete hour 6..18; label = out of stock
   in any of the next 4 hours. A LightGBM classifier on :mod:`feature_store.intraday` features
   trains on days 14..(test start - 1) and is scored on the last ``--test-days`` days, beside
   baselines on the same rows: (a) the SKU's stock-out frequency at that hour on the same
   weekday of past weeks, and over the last 14 days; (b) the zero-sales streak (hours without a
   sale while in stock); (c) shelfcast's current risk formula (``edge_runtime.decide.stockout
   .stockout_risk``) fed with the next 4 hours' expected demand and an estimated stock left
   (units sold before recent sell-outs minus today's sales so far: the data has no stock
   levels). The classifier is exported to ONNX and checked against LightGBM.
2. Daily forecast accuracy on fully in-stock days, rolling origin (2 folds of 7 days; 1 fold
   and a 60-tree demand model with ``--quick``): shelfcast trained with and without recovered
   demand vs statsforecast and mlforecast peers (:mod:`training.censored_accuracy`).

    python benchmarks/stockout_truth.py --json var/bench/stockout_truth.json [--quick]

3. The live replay: ``--replay-stores`` stores of the warning sample (20; 4 with ``--quick``),
   each through its own gateway over Mosquitto (:mod:`twin.stockout_replay`), seeded with the
   14 days before the test days, then ``--replay-days`` test days live (3; 1 with ``--quick``);
   the bundle holds a quick demand model trained on the days before the test and the warning
   model above. Every gateway prediction and published alert is scored against the flags that
   followed (``replay``, ``stores_replayed``).

Sales are in till units (``training.freshretailnet.TILL_UNITS`` per normalised unit) throughout,
as the replay's tills send them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.figures_out import show_figures  # noqa: E402
from benchmarks.machine import machine  # noqa: E402
from edge_runtime.decide.stockout import stockout_risk  # noqa: E402
from feature_store.intraday import FEATURES, HISTORY_DAYS  # noqa: E402
from training import stockout_warning as sw  # noqa: E402
from training.censored_accuracy import OBSERVED, RECOVERED, compare  # noqa: E402
from training.freshretailnet import in_till_units, load_hourly  # noqa: E402

_COL = {n: i for i, n in enumerate(FEATURES)}


def day_close_risk(rows: sw.WarningRows) -> np.ndarray:
    """Baseline (c): shelfcast's risk formula over the next 4 hours with an estimated stock."""
    x = rows.X.astype(np.float64)
    mean = np.maximum(x[:, _COL["latent_next"]], 1e-6)
    daily = np.maximum(x[:, _COL["latent_daily_mean"]], 1e-6)
    p90 = mean * np.maximum(x[:, _COL["max_daily_7"]] / daily, 1.0)
    sold = x[:, _COL["sold_today"]]
    stock = np.where(
        np.isnan(x[:, _COL["sold_before_out_mean"]]),
        x[:, _COL["max_daily_7"]],
        x[:, _COL["sold_before_out_mean"]],
    )
    atp = np.maximum(stock - sold, 0.0)
    return stockout_risk(mean, p90, atp, lead_time_days=1.0).probability


def warning_figures(panel, test_days: int, n_estimators: int, say):
    """The offline scores (and the model's ONNX graph, its threshold and training rows, for
    the replay)."""
    test_start = panel.n_days - test_days
    rows = sw.warning_rows(panel)
    train, test = rows.take(rows.day < test_start), rows.take(rows.day >= test_start)
    say(f"warning: {len(train.y)} training rows, {len(test.y)} test rows; fitting")
    t0 = time.perf_counter()
    model = sw.fit(train, n_jobs=1, n_estimators=n_estimators)
    fit_s = time.perf_counter() - t0
    p_train = model.predict_proba(train.X)[:, 1]
    p = model.predict_proba(test.X)[:, 1]
    threshold = sw.best_f1_threshold(train.y, p_train)
    scores = {"model": {**sw.ranking_scores(test.y, p)}}
    base = sw.baseline_scores(test)
    base["day_close_risk"] = day_close_risk(test)
    for name, score in base.items():
        scores[name] = sw.ranking_scores(test.y, score)
    # A streak rule may rank backwards here (sell-outs follow busy hours): report as given.
    best = max((k for k in scores if k != "model"), key=lambda k: scores[k]["pr_auc"])
    onnx_bytes = sw.to_onnx(model, len(FEATURES))
    parity = float(np.max(np.abs(sw.onnx_probability(onnx_bytes, test.X[:20000]) - p[:20000])))
    alerts = sw.alert_scores(test, p, threshold, panel.store)
    per_hour = {
        int(h): {
            "rows": int((test.hour == h).sum()),
            "positive_rate": float(test.y[test.hour == h].mean()),
            "model": sw.ranking_scores(test.y[test.hour == h], p[test.hour == h]),
            best: sw.ranking_scores(test.y[test.hour == h], base[best][test.hour == h]),
        }
        for h in np.unique(test.hour)
    }
    figures = {
        "rows_train": len(train.y),
        "rows_test": len(test.y),
        "positive_rate_test": float(test.y.mean()),
        "test_days": [str(panel.dates[test_start]), str(panel.dates[-1])],
        "fit_seconds": round(fit_s, 1),
        "n_estimators": n_estimators,
        "scores": scores,
        "best_baseline": best,
        "brier": float(np.mean((p - test.y) ** 2)),
        "brier_base_rate": float(np.mean((train.y.mean() - test.y) ** 2)),
        "reliability": sw.reliability(p, test.y),
        "per_hour": per_hour,
        "alerts": alerts,
        "onnx_bytes": len(onnx_bytes),
        "onnx_max_abs_diff": parity,
    }
    return figures, onnx_bytes, threshold, train.X


def gateway_bundle(
    panel, test_start: int, onnx_bytes: bytes, threshold: float, rows: np.ndarray, out: Path,
    demand_trees: int = 40,
):  # fmt: skip
    """A signed gateway bundle: demand and anomaly models trained (quick, no backtest, each
    quantile model of ``demand_trees`` trees) on the panel's daily sales before ``test_start``,
    plus the warning model's ONNX graph."""
    from training.freshretailnet import daily_frame
    from training.signing_key import signer_for
    from training.train import TrainConfig, train

    frame = daily_frame(panel)
    frame = frame[frame["date"] < np.datetime64(panel.dates[test_start], "ns")]
    # The replay scores neither the demand nor the anomaly model: small ones export fast.
    config = TrainConfig(
        folds=0, n_estimators=demand_trees, baselines=False, anomaly_rows=5000, anomaly_trees=10
    )
    base = train(frame.drop(columns=["stockout_hours"]), out / "base", config,
                 "freshretailnet (replay stores)", track=False, quick=True).bundle  # fmt: skip
    about = {"trained_days": [str(panel.dates[HISTORY_DAYS]), str(panel.dates[test_start - 1])]}
    bundle = sw.bundle_with_warning(
        base, out / "bundle", onnx_bytes, rows, threshold, signer_for(None), about
    )
    return bundle


def replay_figures(
    panel, test_start, onnx_bytes, threshold, rows, n_stores, live_days, say, demand_trees=40
) -> dict:
    """``n_stores`` stores of the panel through their own gateways over Mosquitto (see
    :mod:`twin.stockout_replay`): the first ``live_days`` test days live."""
    from shelfcast.broker import EmbeddedBroker
    from training.signing_key import public_key_path, signing_key_path
    from twin.stockout_replay import AlertCollector, replay_store, score, store_stream

    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="stockout_replay-", dir=ROOT / "var" / "bench"))
    say("replay: training the gateway bundle's demand model (quick)")
    bundle = gateway_bundle(panel, test_start, onnx_bytes, threshold, rows, work, demand_trees)
    stores = np.unique(panel.store)[:n_stores]
    broker = EmbeddedBroker(prefer="mosquitto", work_dir=work / "broker").start()
    collector = AlertCollector(broker.port, "shelfcast")
    replays = []
    try:
        for k, store in enumerate(stores):
            stream = store_stream(
                panel, np.flatnonzero(panel.store == store), test_start, live_days
            )
            r = replay_store(stream, bundle, public_key_path(signing_key_path()), broker.port,
                             work / f"gw-{store}", collector)  # fmt: skip
            replays.append(r)
            say(f"replay: store {store} ({k + 1}/{len(stores)}): {stream.live_events} live "
                f"events, {len(r.predictions)} predictions, {len(r.alerts)} alerts, "
                f"{r.seconds:.1f} s")  # fmt: skip
    finally:
        collector.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    figures = score(panel, replays, live_days)
    figures.update(
        stores=len(replays),
        live_days=[str(panel.dates[test_start]), str(panel.dates[test_start + live_days - 1])],
        broker=broker.kind,
        events_ingested=int(sum(r.counters.get("ingested", 0) for r in replays)),
        seconds=round(sum(r.seconds for r in replays), 1),
    )
    return figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="small samples: under 5 minutes")
    ap.add_argument("--stores", type=int, help="stores (all their SKUs) for the warning model")
    ap.add_argument("--forecast-series", type=int, help="series sampled for forecast accuracy")
    ap.add_argument("--test-days", type=int, default=14)
    ap.add_argument("--replay-stores", type=int, help="stores replayed live (20; 4 with --quick)")
    ap.add_argument("--replay-days", type=int, help="live days per store (3; 1 quick)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    # --quick keeps every part, live replay included, on small samples: under 5 minutes.
    n_stores = args.stores or (6 if args.quick else 60)
    replay_stores = args.replay_stores or (4 if args.quick else 20)
    replay_days = args.replay_days or (1 if args.quick else 3)
    n_fc = args.forecast_series or (60 if args.quick else 2000)
    trees = 60 if args.quick else 300
    demand_trees = 10 if args.quick else 40  # the replay bundle's demand model: not scored here
    folds, demand_params = (1, {"n_estimators": 60}) if args.quick else (2, None)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f}s] {msg}", file=sys.stderr, flush=True)

    say(f"loading every series of {n_stores} stores for the warning model")
    panel = in_till_units(load_hourly(stores=n_stores, seed=args.seed))
    n_warn = panel.n_series
    warn, onnx_bytes, threshold, rows = warning_figures(panel, args.test_days, trees, say)
    test_start = panel.n_days - args.test_days
    sizes = (replay_stores, replay_days)
    replay = replay_figures(
        panel, test_start, onnx_bytes, threshold, rows, *sizes, say, demand_trees
    )
    del panel
    say(f"forecast accuracy on {n_fc} series")
    fpanel = load_hourly(series=n_fc, seed=args.seed + 1)
    acc = compare(fpanel, folds=folds, horizon=7, model_params=demand_params, progress=say)
    best_peer = acc.get("best_peer")
    model = warn["scores"]["model"]
    out = {
        "roc_auc_4h": model["roc_auc"],
        "pr_auc_4h": model["pr_auc"],
        "pr_auc_4h_best_baseline": warn["scores"][warn["best_baseline"]]["pr_auc"],
        "roc_auc_4h_best_baseline": max(
            v["roc_auc"] for k, v in warn["scores"].items() if k != "model"
        ),
        "brier_4h": warn["brier"],
        "median_lead_hours": warn["alerts"]["median_lead_hours"],
        "alerts_per_store_day": warn["alerts"]["alerts_per_store_day"],
        "alerts_per_sku_day": warn["alerts"]["alerts_per_sku_day"],
        "rmsse_with_recovery": acc["rmsse_daily"][RECOVERED],
        "rmsse_without_recovery": acc["rmsse_daily"][OBSERVED],
        "rmsse_best_peer": acc["rmsse_daily"][best_peer] if best_peer else None,
        "rmsse_hourly_with_recovery": acc["rmsse_hourly"][RECOVERED],
        "rmsse_hourly_without_recovery": acc["rmsse_hourly"][OBSERVED],
        "stores_replayed": replay["stores"],
        "replay_roc_auc_4h": replay.get("roc_auc"),
        "replay_pr_auc_4h": replay.get("pr_auc"),
        "replay": replay,
        "warning": warn,
        "forecast": acc,
        "data": {
            "file": "freshretailnet/daily.parquet",
            "span": [str(fpanel.dates[0]), str(fpanel.dates[-1])],
            "warning_stores": n_stores,
            "warning_series": n_warn,
            "forecast_series": n_fc,
            "forecast_folds": folds,
            "seed": args.seed,
        },
        "machine": machine(),
        "quick": bool(args.quick),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    show_figures(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
