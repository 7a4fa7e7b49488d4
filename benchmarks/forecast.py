"""`shelfcast forecast` on the last 28 days of the real data, trained without them.

For each data set (``favorita``: 54 stores' daily receipts; ``m5_sample``: 10 M5 item x store
series): the last 28 days are held out, ``training.train.train`` fits on the rest (its own
rolling-origin backtest included), then the ``shelfcast forecast`` CLI (a subprocess, as a user
runs it) forecasts the 28 held-out days from the bundle; its RMSSE (point = ``mean``, scaled as
the backtest scales) is set beside statsforecast SeasonalNaive(7) and AutoETS fitted on the same
history and scored on the same days, and beside the training run's backtest RMSSE. Holiday
dates of the held-out days are passed with ``--calendar`` (a calendar is known in advance).

Timing: wall seconds of the whole CLI run (interpreter start, imports, read, bundle check,
features, ONNX scoring, write) and of the in-process forecast alone (bundle load + features +
scoring), medians over ``--repeats`` runs.

    python benchmarks/forecast.py --json var/bench/forecast.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402
from feature_store.batch import panel_from_frame  # noqa: E402
from training.baselines import baseline_forecasts  # noqa: E402
from training.datasets import load_dataset  # noqa: E402
from training.forecast import MIN_HISTORY_DAYS, Forecaster, holdout_rmsse  # noqa: E402
from training.train import TrainConfig, train  # noqa: E402

HOLDOUT = 28
DATASETS = ("favorita", "m5_sample")


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timestamp, list[str]]:
    """History before the holdout (series too young for the model's lags dropped), the first
    held-out day, and the dropped series."""
    start = frame["date"].max() - pd.Timedelta(days=HOLDOUT - 1)
    hist = frame[frame["date"] < start]
    first = hist.groupby(["store_id", "sku"])["date"].min()
    young = first[(start - first).dt.days < MIN_HISTORY_DAYS]
    keep = ~pd.MultiIndex.from_frame(hist[["store_id", "sku"]]).isin(young.index)
    return hist[keep], start, [f"{s}/{k}" for s, k in young.index]


def baseline_rmsse(full: pd.DataFrame, hist: pd.DataFrame, start: pd.Timestamp) -> dict:
    """SeasonalNaive(7) and AutoETS (and the other statsforecast baselines) on the same days."""
    panel = panel_from_frame(hist)
    cutoff = panel.n_days - 1
    series = np.arange(len(panel.keys))
    fc = baseline_forecasts(panel, series, cutoff, HOLDOUT)
    dates = pd.date_range(start, periods=HOLDOUT, freq="D")
    out = {}
    for name, values in fc.items():
        table = pd.DataFrame(
            {
                "store_id": np.repeat([k[0] for k in panel.keys], HOLDOUT),
                "sku": np.repeat([k[1] for k in panel.keys], HOLDOUT),
                "date": np.tile(dates.to_numpy(), len(panel.keys)),
                "mean": values.reshape(-1),
            }
        )
        out[name] = holdout_rmsse(full, table)
    return out


def run_cli(bundle: Path, data: Path, calendar: Path, out: Path) -> float:
    cmd = [
        str(ROOT / ".venv" / "bin" / "shelfcast"),
        "forecast",
        "--bundle",
        str(bundle),
        "--data",
        str(data),
        "--horizon",
        str(HOLDOUT),
        "--calendar",
        str(calendar),
        "--out",
        str(out),
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def bench(name: str, config: TrainConfig, repeats: int, work: Path) -> dict:
    print(f"== {name}: loading, holding out the last {HOLDOUT} days", file=sys.stderr)
    full = load_dataset(name)
    hist, start, dropped = split(full)
    data = work / f"{name}_history.parquet"
    hist.to_parquet(data)
    calendar = work / f"{name}_calendar.csv"
    future = full[full["date"] >= start]
    events = future.loc[future.get("event", pd.Series(0, index=future.index)) > 0, "date"]
    pd.DataFrame({"date": sorted(set(events))}).to_csv(calendar, index=False)

    print(
        f"== {name}: training on {hist['date'].min().date()}..{hist['date'].max().date()}",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    result = train(hist, work / f"{name}_bundle", config, name, track=False)
    train_s = time.perf_counter() - t0

    out = work / f"{name}_forecast.parquet"
    cli_s = [run_cli(result.bundle, data, calendar, out) for _ in range(repeats)]
    table = pd.read_parquet(out)
    inproc_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        Forecaster.from_bundle(result.bundle).forecast(hist, HOLDOUT, calendar_events=events)
        inproc_s.append(time.perf_counter() - t0)

    model = holdout_rmsse(full, table)
    print(f"== {name}: fitting statsforecast baselines", file=sys.stderr)
    base = baseline_rmsse(full, hist, start)
    common = model.index
    for s in base.values():
        common = common.intersection(s.index)
    bt = result.backtest
    return {
        "dataset": name,
        "series": len(common),
        "series_dropped_short_history": dropped,
        "holdout": f"{start.date()}..{(start + pd.Timedelta(days=HOLDOUT - 1)).date()}",
        "rmsse_shelfcast": float(model[common].mean()),
        "rmsse_SeasonalNaive7": float(base["SeasonalNaive"][common].mean()),
        "rmsse_AutoETS": float(base["AutoETS"][common].mean()),
        **{
            f"rmsse_{k}": float(v[common].mean())
            for k, v in base.items()
            if k not in ("SeasonalNaive", "AutoETS")
        },
        "backtest_rmsse_model": float(bt["rmsse_model"]),
        "backtest_rmsse_best_baseline": float(bt.get("rmsse_best_baseline", float("nan"))),
        "backtest_best_baseline": bt.get("best_baseline"),
        "forecast_cli_seconds_median": statistics.median(cli_s),
        "forecast_cli_seconds_runs": cli_s,
        "forecast_inprocess_seconds_median": statistics.median(inproc_s),
        "train_seconds": train_s,
        "train_config": {
            "folds": config.folds,
            "trees": config.n_estimators,
            "baselines": config.baselines,
        },
    }


def table(rows: list[dict]) -> str:
    head = (
        "| data set | series | held-out days | shelfcast forecast RMSSE | SeasonalNaive(7) | "
        "AutoETS | backtest RMSSE (model / best baseline) | forecast s (CLI, in-process) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [
        f"| {r['dataset']} | {r['series']} | {r['holdout']} | {r['rmsse_shelfcast']:.4f} | "
        f"{r['rmsse_SeasonalNaive7']:.4f} | {r['rmsse_AutoETS']:.4f} | "
        f"{r['backtest_rmsse_model']:.4f} / {r['backtest_rmsse_best_baseline']:.4f} "
        f"({r['backtest_best_baseline']}) | "
        f"{r['forecast_cli_seconds_median']:.2f} / {r['forecast_inprocess_seconds_median']:.3f} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="quick training, 1 timing run")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--repeats", type=int, default=None, help="timing runs (default 3)")
    args = parser.parse_args()
    config = TrainConfig.quick_config() if args.quick else TrainConfig()
    repeats = args.repeats or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="shelfcast-forecast-bench-") as tmp:
        rows = [bench(name, config, repeats, Path(tmp)) for name in args.datasets]
    report = {"machine": machine(), "quick": args.quick, "results": rows}
    print(f"machine: {report['machine']}")
    print(table(rows))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
